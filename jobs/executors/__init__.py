"""What workers run for each of the jobs app's kinds (torch). The registry (``jobs.apps``)
names these functions by dotted path; nothing on the site imports them."""
