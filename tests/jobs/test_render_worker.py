"""End to end: a real Celery worker process takes a render job off a real broker.

Both brokers that production uses: Redis and RabbitMQ, on this machine.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from kombu import Connection

from jobs import lifecycle, planning, tasks
from jobs.models import Artifact, ArtifactKind, RenderJob
from neurons.models import Model
from tests.conftest import REPO
from tests.jobs.conftest import TINY

BROKERS = {
    "redis": ("redis://127.0.0.1:6379/11", 6379),  # a database of its own on the shared Redis
    "rabbitmq": ("amqp://guest:guest@127.0.0.1:5672//", 5672),
}


def answers(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def database_url() -> str:
    db = settings.DATABASES["default"]
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.mark.broker
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("broker_name", BROKERS)
@pytest.mark.usefixtures("shared_brokers")
def test_a_worker_process_takes_a_queued_job_to_done(
    mobilenet: Model, tmp_path: Path, broker_name: str
) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("the worker process needs the test database on a server (PostgreSQL)")
    BROKER_URL, port = BROKERS[broker_name]
    if not answers(port):
        pytest.skip(f"no {broker_name} on 127.0.0.1:{port}")
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),  # the test's own database
        "CELERY_BROKER_URL": BROKER_URL,
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "MICROSCOPE_WEIGHTS_DIR": str(settings.WEIGHTS_DIR),
        "MICROSCOPE_VAR_DIR": str(tmp_path / "var"),
    }
    with Connection(BROKER_URL) as broker:
        try:  # leftovers of an earlier run
            broker.default_channel.queue_purge("gpu")
        except Exception:  # the queue does not exist yet: nothing to purge
            pass
    log_path = tmp_path / "worker.log"
    log_file = open(log_path, "w")  # a file, not a pipe: a full pipe would stall the worker
    worker = subprocess.Popen(
        [
            sys.executable, "-m", "celery", "-A", "microscope", "worker", "-Q", "gpu",
            "--concurrency", "1", "--without-gossip", "--without-mingle", "--loglevel", "INFO",
        ],
        cwd=REPO, env=env, stdout=log_file, stderr=subprocess.STDOUT,
    )  # fmt: skip

    def log() -> str:
        return log_path.read_text()

    try:
        # Wait until the worker consumes from "gpu", so that the queue's binding exists.
        deadline = time.monotonic() + 120
        while " ready." not in log() and worker.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert " ready." in log(), log()
        layer = mobilenet.layers.get(name="features_2")
        job = planning.render_job_create(
            model=mobilenet, layer=layer, kind=ArtifactKind.FEATUREVIS, params=TINY,
            channels=range(2), enqueue=False,
        )  # fmt: skip
        # What the service does on commit, over the broker's connection (this process's
        # Celery app is configured with the embedded broker).
        with Connection(BROKER_URL) as broker:
            tasks.render_task.apply_async(args=[job.pk], task_id=job.task_id, connection=broker)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            job.refresh_from_db()
            if not job.is_active:
                break
            time.sleep(0.5)
        assert job.status == RenderJob.Status.DONE, job.error or log()
        assert job.worker and job.worker != lifecycle.worker_name()  # done over there
        assert job.attempts == 1 and (job.progress_done, job.progress_total) == (2, 2)
        assert Artifact.objects.filter(job=job).count() == 2
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
        log_file.close()
