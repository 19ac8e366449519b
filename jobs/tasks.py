"""Celery tasks. Routed to the ``gpu`` queue (settings.CELERY_TASK_ROUTES).

A message carries a job id only: it wakes a worker up, and the database says what is to
be done. The task claims the job atomically and calls the runner, so a redelivered or
duplicated message is harmless. It is acked late and rejected (so redelivered) when its
worker process dies. Every worker also sweeps the jobs every few seconds
(``jobs.lifecycle.render_job_sweep``): a job whose worker died is queued again once its
heartbeat is stale, and a queued job whose message the broker lost is published again.
"""

from __future__ import annotations

import logging
import threading

from celery import Task
from celery.exceptions import Reject
from celery.signals import worker_ready, worker_shutdown
from django.conf import settings

from jobs.celery_app import app

logger = logging.getLogger(__name__)


@app.task(
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=settings.MICROSCOPE_RENDER_SOFT_TIME_LIMIT,
)
def render_task(self: Task, job_id: int) -> str:
    from jobs import runner  # the worker's side, which the site never needs
    from jobs.runner import JobNotEnded

    try:
        claim = runner.render_job_execute(job_id=job_id, task_id=self.request.id or "")
    except JobNotEnded:
        # The job's row could not be ended (the database is away): the message goes back
        # to the queue rather than being acknowledged under a row that says "running".
        raise Reject("the job's row could not be ended", requeue=True) from None
    # Busy: held by a live worker; if it dies, the sweep queues the job again.
    return claim.value


_sweeping = threading.Event()
_stop = threading.Event()


def _sweep() -> None:
    from django.db import connection

    from jobs.lifecycle import render_job_sweep

    try:
        found = render_job_sweep()
        if any(found.values()):
            logger.warning("job sweep: %s", found)
    except Exception:  # the database or the broker is away: try again next time
        logger.warning("job sweep failed", exc_info=True)
        connection.close()


def _sweep_forever() -> None:
    from django.db import connection

    while not _stop.wait(settings.MICROSCOPE_JOB_SWEEP_SECONDS):
        _sweep()
    connection.close()


@worker_ready.connect
def start_sweeping(**_: object) -> None:
    """A worker sweeps the jobs as it starts, then every MICROSCOPE_JOB_SWEEP_SECONDS."""
    _sweep()
    if not _sweeping.is_set():
        _sweeping.set()
        threading.Thread(target=_sweep_forever, name="job-sweep", daemon=True).start()


@worker_shutdown.connect
def stop_sweeping(**_: object) -> None:
    _stop.set()
