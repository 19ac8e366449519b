"""A job's life on the worker side: enqueued, claimed, beating, progressing, finished, and
recovered when its worker died. Every step is one conditional update, so that any number
of workers (and redelivered messages) can race for a job harmlessly."""

from __future__ import annotations

import logging
import os
import socket
import uuid
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db.models import F, Q
from django.utils import timezone

from jobs.models import RenderJob

logger = logging.getLogger(__name__)

__all__ = [
    "ClaimOutcome",
    "render_job_beat",
    "render_job_cancel",
    "render_job_cancel_by",
    "render_job_claim",
    "render_job_enqueue",
    "render_job_finish",
    "render_job_progress",
    "render_job_publish",
    "render_job_recover",
    "render_job_requeue",
    "render_job_sweep",
    "worker_name",
]


class ClaimOutcome(Enum):
    CLAIMED = "claimed"
    BUSY = "busy"  # another worker holds it and is alive: look again later
    FINISHED = "finished"  # done or failed already: nothing to do
    GONE = "gone"  # no such job (deleted)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def render_job_enqueue(job_id: int, task_id: str) -> bool:
    """Publish the job's message (its id only) to the ``gpu`` queue; return whether it went.

    The job is stored already (this runs on commit): a broker that cannot be reached, or
    refuses the message, is a warning, not an error for the request or command that asked.
    The job stays queued, its publish not counted (so the wait before the next does not
    double), and the workers' sweep publishes it at its first look."""
    from jobs import tasks  # Celery loads with the first message a process sends

    try:
        tasks.render_task.apply_async(args=[job_id], task_id=task_id)
    except Exception as error:  # kombu's OperationalError, or whatever a broker raises
        logger.warning(
            "job %s is queued, but its message could not be sent (%s: %s): it is published "
            "again once workers sweep the queue",
            job_id,
            type(error).__name__,
            error,
        )
        RenderJob.objects.filter(id=job_id, task_id=task_id, publishes__gt=0).update(
            published=None, publishes=F("publishes") - 1
        )
        return False
    return True


def render_job_publish(*, job_id: int, unless_since: datetime | None = None) -> bool:
    """Publish a queued job's message again (a new task id), for a message the broker may
    have lost. ``unless_since``: not if it was published after that (another caller just
    did). Harmless when the old message still exists: the claim takes a job once."""
    task_id = str(uuid.uuid4())
    still = RenderJob.objects.filter(id=job_id, status=RenderJob.Status.QUEUED)
    if unless_since is not None:
        still = still.filter(Q(published__isnull=True) | Q(published__lte=unless_since))
    if not still.update(task_id=task_id, published=timezone.now(), publishes=F("publishes") + 1):
        return False
    return render_job_enqueue(job_id, task_id)


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


def render_job_progress(*, job_id: int, done: int, total: int, note: str = "") -> bool:
    """Record how far the job is. False: it is no longer running (cancelled, or gone), and
    its worker should stop."""
    return bool(
        RenderJob.objects.filter(id=job_id, status=RenderJob.Status.RUNNING).update(
            progress_done=done,
            progress_total=total,
            progress_note=note[:200],
            heartbeat=timezone.now(),
        )
    )


def render_job_finish(*, job_id: int, error: str = "") -> None:
    """End a job as done, or failed with the reason. A job cancelled meanwhile stays
    cancelled."""
    status = RenderJob.Status.FAILED if error else RenderJob.Status.DONE
    updates: dict[str, Any] = {
        "status": status,
        "error": error,
        "finished": timezone.now(),
        "progress_note": "",
    }
    if not error:
        updates["progress_done"] = F("progress_total")
    RenderJob.objects.filter(id=job_id, status__in=RenderJob.ACTIVE).update(**updates)


CANCEL_REFUSED = (
    "only who asked for a job, or staff, may cancel it, and only jobs people ask for "
    "(claims' evidence is not)"
)


def render_job_cancel_by(*, job: RenderJob, user: Any) -> bool:
    """Cancel ``job`` as ``user`` (its page's button and the API); False if it had ended.
    Raises PermissionDenied when ``user`` may not cancel it, ended or not: the answer to
    someone else's job is the same whatever its state."""
    if not job.cancels_for(user):
        raise PermissionDenied(CANCEL_REFUSED)
    return render_job_cancel(job_id=job.pk, by=user.get_username())


def render_job_cancel(*, job_id: int, by: str) -> bool:
    """Cancel a queued or running job; False if it had ended already. Its worker sees it at
    its next progress report (within a step of a feature visualization) and stops; what it
    stored so far is kept, and asking again renders only the rest."""
    return bool(
        RenderJob.objects.filter(id=job_id, status__in=RenderJob.ACTIVE).update(
            status=RenderJob.Status.CANCELLED,
            finished=timezone.now(),
            error=f"cancelled by {by}; what was rendered is kept",
            progress_note="",
        )
    )


def render_job_requeue(*, job_id: int, error: str = "") -> bool:
    """Put a running job back in the queue and publish it (its worker cannot go on: a lost
    database connection). What it rendered is kept; the next claim renders the rest."""
    if not RenderJob.objects.filter(id=job_id, status=RenderJob.Status.RUNNING).update(
        status=RenderJob.Status.QUEUED, error=error, heartbeat=None
    ):
        return False
    return render_job_publish(job_id=job_id)


def render_job_recover() -> list[int]:
    """Queue again the running jobs whose worker died (heartbeat stopped).

    Each job is put back to queued by one conditional update, so one caller re-publishes
    it, not all of them.
    """
    recovered = []
    for job_id in RenderJob.objects.filter(
        status=RenderJob.Status.RUNNING, heartbeat__lt=_stale_before()
    ).values_list("id", flat=True):
        if RenderJob.objects.filter(
            id=job_id, status=RenderJob.Status.RUNNING, heartbeat__lt=_stale_before()
        ).update(status=RenderJob.Status.QUEUED, published=None):
            render_job_publish(job_id=job_id)
            recovered.append(job_id)
    return recovered


def _republish_due(job: RenderJob, now: datetime) -> bool:
    """Queued and unclaimed past the bound, which doubles with each publish (to 32 times)
    so that a long queue is not flooded with copies of the messages it still holds."""
    if job.published is None:
        return True
    bound = settings.MICROSCOPE_JOB_REPUBLISH_SECONDS * 2 ** min(max(job.publishes - 1, 0), 5)
    return job.published < now - timedelta(seconds=bound)


def render_job_sweep() -> dict[str, list[int]]:
    """What every worker runs every few seconds, so that no job is ever stuck: running
    jobs whose worker died are queued again, and queued jobs whose message the broker
    lost (a restart without persistence) are published again."""
    now = timezone.now()
    republished = []
    for job in RenderJob.objects.filter(status=RenderJob.Status.QUEUED).only(
        "id", "published", "publishes"
    ):
        if _republish_due(job, now) and render_job_publish(
            job_id=job.pk, unless_since=job.published or now
        ):
            republished.append(job.pk)
    return {"recovered": render_job_recover(), "republished": republished}
