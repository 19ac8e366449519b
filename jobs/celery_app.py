"""The Celery app that carries job messages to the workers (``celery -A microscope worker``
finds it through ``microscope.celery``).

Its configuration is Django's ``CELERY_*`` settings. The web process loads it, and Celery
with it, only when it first publishes a job (``jobs.lifecycle.render_job_enqueue``): pages
never need it. Measured with ``bench/web.py``, against the app loaded with the project: a
site process holds 1,189 modules instead of 1,338 and 81 MB instead of 88, and answers
first after 0.60-0.73 s instead of 0.74-0.76.
"""

from __future__ import annotations

from celery import Celery

app = Celery("microscope")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
