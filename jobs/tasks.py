"""Celery tasks. Routed to the ``gpu`` queue (settings.CELERY_TASK_ROUTES).

A task gets a job id only, claims the job atomically and calls the runner. It is acked
late and rejected (so redelivered) when its worker process dies; the claim makes a
redelivered message harmless, and a job whose worker died is claimed again once its
heartbeat is stale.
"""

from __future__ import annotations

from celery import Task, shared_task
from celery.signals import worker_ready
from django.conf import settings


@shared_task(
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=settings.MICROSCOPE_RENDER_SOFT_TIME_LIMIT,
    max_retries=None,
)
def render_task(self: Task, job_id: int) -> str:
    from jobs import runner  # the worker's side, which the site never needs
    from jobs.lifecycle import ClaimOutcome

    claim = runner.render_job_execute(job_id=job_id, task_id=self.request.id or "")
    if claim is ClaimOutcome.BUSY:
        # Held by a worker that was alive a moment ago: look again once its heartbeat
        # would be stale, and take the job over then if that worker died.
        raise self.retry(countdown=settings.MICROSCOPE_JOB_STALE_SECONDS)
    return claim.value


@worker_ready.connect
def recover_orphaned_jobs(**_: object) -> None:
    """A worker starting up queues again the jobs of workers that died."""
    from jobs.lifecycle import render_job_recover

    render_job_recover()
