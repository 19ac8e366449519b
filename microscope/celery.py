"""The Celery app. Workers run `celery -A microscope worker -Q gpu`."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "microscope.settings")

app = Celery("microscope")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
