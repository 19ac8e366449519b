"""What workers run for each of the jobs app's kinds (torch). The registry (``jobs.apps``)
names these functions by dotted path; nothing on the site imports them."""

import base64


def png_data_uri(png: bytes) -> str:
    """A small PNG (a heat map) as a data: URI, stored in an artifact's data."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")
