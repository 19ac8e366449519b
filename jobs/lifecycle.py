"""A job's life on the worker side: enqueued, claimed, beating, progressing, finished, and
recovered when its worker died. Every step is one conditional update, so that any number
of workers (and redelivered messages) can race for a job harmlessly."""

from __future__ import annotations

import os
import socket
import uuid
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

from django.conf import settings
from django.db.models import F, Q
from django.utils import timezone

from jobs import tasks
from jobs.models import RenderJob

__all__ = [
    "ClaimOutcome",
    "render_job_beat",
    "render_job_claim",
    "render_job_enqueue",
    "render_job_finish",
    "render_job_progress",
    "render_job_recover",
    "worker_name",
]


class ClaimOutcome(Enum):
    CLAIMED = "claimed"
    BUSY = "busy"  # another worker holds it and is alive: look again later
    FINISHED = "finished"  # done or failed already: nothing to do
    GONE = "gone"  # no such job (deleted)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def render_job_enqueue(job_id: int, task_id: str) -> None:
    """Publish the job's message (its id only) to the ``gpu`` queue."""
    tasks.render_task.apply_async(args=[job_id], task_id=task_id)


def _stale_before() -> datetime:
    return timezone.now() - timedelta(seconds=settings.MICROSCOPE_JOB_STALE_SECONDS)


def render_job_claim(*, job_id: int, task_id: str = "") -> tuple[ClaimOutcome, RenderJob | None]:
    """Take a job atomically: queued, or running under a worker whose heartbeat stopped.

    A redelivered message for a job that is running elsewhere, done or failed claims nothing.
    """
    now = timezone.now()
    claimable = Q(status=RenderJob.Status.QUEUED) | Q(
        status=RenderJob.Status.RUNNING, heartbeat__lt=_stale_before()
    )
    updates: dict[str, Any] = {
        "status": RenderJob.Status.RUNNING,
        "started": now,
        "heartbeat": now,
        "finished": None,
        "error": "",
        "worker": worker_name(),
        "attempts": F("attempts") + 1,
    }
    if task_id:
        updates["task_id"] = task_id
    if RenderJob.objects.filter(claimable, id=job_id).update(**updates):
        job = RenderJob.objects.select_related("model", "layer").get(id=job_id)
        return ClaimOutcome.CLAIMED, job
    job = RenderJob.objects.filter(id=job_id).first()
    if job is None:
        return ClaimOutcome.GONE, None
    if job.status == RenderJob.Status.RUNNING:
        return ClaimOutcome.BUSY, job
    return ClaimOutcome.FINISHED, job


def render_job_beat(*, job_id: int) -> None:
    RenderJob.objects.filter(id=job_id, status=RenderJob.Status.RUNNING).update(
        heartbeat=timezone.now()
    )


def render_job_progress(*, job_id: int, done: int, total: int) -> None:
    RenderJob.objects.filter(id=job_id, status=RenderJob.Status.RUNNING).update(
        progress_done=done, progress_total=total, heartbeat=timezone.now()
    )


def render_job_finish(*, job_id: int, error: str = "") -> None:
    status = RenderJob.Status.FAILED if error else RenderJob.Status.DONE
    updates: dict[str, Any] = {"status": status, "error": error, "finished": timezone.now()}
    if not error:
        updates["progress_done"] = F("progress_total")
    RenderJob.objects.filter(id=job_id).update(**updates)


def render_job_recover() -> list[int]:
    """Queue again the running jobs whose worker died (heartbeat stopped).

    For brokers that lose a dead worker's message (the filesystem one loses it when the
    whole worker is killed); workers call this when they start. Each job is put back to
    queued by one conditional update, so one caller re-enqueues it, not all of them.
    """
    recovered = []
    for job in RenderJob.objects.filter(
        status=RenderJob.Status.RUNNING, heartbeat__lt=_stale_before()
    ).only("id", "task_id"):
        if RenderJob.objects.filter(
            id=job.pk, status=RenderJob.Status.RUNNING, heartbeat__lt=_stale_before()
        ).update(status=RenderJob.Status.QUEUED, task_id=str(uuid.uuid4())):
            job.refresh_from_db(fields=["task_id"])
            render_job_enqueue(job.pk, job.task_id)
            recovered.append(job.pk)
    return recovered
