"""The Celery app, for `celery -A microscope worker -Q gpu`: it lives in ``jobs.celery_app``,
beside the tasks it runs, so that the site loads it only when it sends a job."""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "microscope.settings")

from jobs.celery_app import app  # after the settings are named: Celery reads them as it starts

__all__ = ["app"]
