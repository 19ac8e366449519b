"""Running a job in a worker: claim it, keep its heartbeat, call its kind's function, and
end it as done or failed with a reason a person can act on.

Celery's task (``jobs.tasks``) and ``manage.py render --sync`` call
:func:`render_job_execute`. The kind's function is found in the registry
(``jobs.kinds``) and imported on first use: this module imports no torch itself.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import InterfaceError, OperationalError, connection

from jobs import kinds, lifecycle
from jobs.kinds import Progress, RenderFailure
from jobs.lifecycle import ClaimOutcome

__all__ = ["JobNotEnded", "JobStopped", "failure_reason", "heartbeat", "render_job_execute"]

logger = logging.getLogger(__name__)

# What a lost database connection raises (a failover, a restart, pg_terminate_backend).
TRANSIENT = (OperationalError, InterfaceError)
END_TRIES = 4  # writes of a job's end, a second apart and more, before giving up


class JobNotEnded(Exception):
    """The job's end could not be written: its row still says running."""


class JobStopped(Exception):
    """The job is no longer running (cancelled, or deleted): its worker stops where it is."""


def _end(job_id: int, *, error: str = "", requeue: bool = False) -> None:
    """Write the job's end (done, failed, or back in the queue), reconnecting to the
    database between tries; raises JobNotEnded when it stays away."""
    for attempt in range(END_TRIES):
        try:
            if requeue:
                lifecycle.render_job_requeue(job_id=job_id, error=error)
            else:
                lifecycle.render_job_finish(job_id=job_id, error=error)
            return
        except TRANSIENT:
            logger.warning("ending job %s failed; reconnecting", job_id, exc_info=True)
            connection.close()
            time.sleep(2**attempt)
    raise JobNotEnded(job_id)


@contextmanager
def heartbeat(job_id: int) -> Iterator[None]:
    """Write the job's heartbeat every few seconds from a thread while the block runs."""
    stop = threading.Event()
    interval = max(1.0, settings.MICROSCOPE_JOB_STALE_SECONDS / 6)

    def beat() -> None:
        try:
            while not stop.wait(interval):
                try:
                    lifecycle.render_job_beat(job_id=job_id)
                except Exception:  # a missed beat is harmless; the next one may pass
                    logger.warning("heartbeat of job %s failed", job_id, exc_info=True)
                    connection.close()  # a broken connection is opened afresh next time
        finally:
            connection.close()

    thread = threading.Thread(target=beat, name=f"heartbeat-{job_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


class _Reporter:
    """Records progress on the job (at most every MICROSCOPE_JOB_PROGRESS_MS) and passes it
    on; raises JobStopped once the job's row says it is no longer running (cancelled)."""

    def __init__(self, job_id: int, also: Progress | None) -> None:
        self.job_id = job_id
        self.also = also
        self.last = 0.0
        self.done = self.total = 0

    def __call__(self, done: int, total: int, note: str = "") -> None:
        self.done, self.total = done, total
        now = time.monotonic()
        if now - self.last >= settings.MICROSCOPE_JOB_PROGRESS_MS / 1000 or done >= total:
            self.last = now
            running = lifecycle.render_job_progress(
                job_id=self.job_id, done=done, total=total, note=note
            )
            if not running:
                raise JobStopped(self.job_id)
        if self.also is not None:
            self.also(done, total)


def failure_reason(exc: BaseException, done: int = 0, total: int = 0) -> str:
    """Why a job failed, in words a person can act on (``done`` of ``total``: how far)."""
    if isinstance(exc, RenderFailure):
        return str(exc)
    if isinstance(exc, JobStopped):
        return "cancelled"
    if isinstance(exc, SoftTimeLimitExceeded):
        after = f" after {done} of {total}" if total else ""
        return (
            f"stopped at the time limit ({settings.MICROSCOPE_RENDER_SOFT_TIME_LIMIT} s)"
            f"{after}; what was rendered is kept: ask again to render the rest"
        )
    return f"{type(exc).__name__}: {exc}"


def render_job_execute(
    *, job_id: int, task_id: str = "", progress: Progress | None = None
) -> ClaimOutcome:
    """Claim the job and do it. Returns how the claim went; a failure is recorded on the job."""
    claim, job = lifecycle.render_job_claim(job_id=job_id, task_id=task_id)
    if claim is not ClaimOutcome.CLAIMED:
        logger.info("job %s not claimed: %s", job_id, claim.value)
        return claim
    assert job is not None
    reporter = _Reporter(job.pk, progress)
    try:
        with heartbeat(job.pk):
            kinds.executor(job)(job=job, progress=reporter)
    except JobStopped:
        # Cancelled (or deleted) meanwhile: its row says so already, and what it stored
        # is kept.
        logger.info("job %s stopped: it is no longer running", job.pk)
    except TRANSIENT as exc:
        # The database went away under the job: what it stored is kept, and it goes back
        # to the queue to go on from there (a few times, then it fails with the reason).
        logger.warning("job %s lost its database connection", job.pk, exc_info=True)
        connection.close()
        reason = f"the database connection was lost ({type(exc).__name__}: {exc})".strip()
        if job.attempts < settings.MICROSCOPE_JOB_ATTEMPTS:
            _end(job.pk, error=f"{reason}; queued again", requeue=True)
        else:
            _end(job.pk, error=f"{reason}, {job.attempts} times: giving up")
    except Exception as exc:
        if not isinstance(exc, RenderFailure | SoftTimeLimitExceeded):
            logger.exception("job %s failed", job.pk)
        _end(job.pk, error=failure_reason(exc, reporter.done, reporter.total))
    else:
        _end(job.pk)
    return claim
