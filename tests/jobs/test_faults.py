"""Faults, with real processes: Celery workers killed with SIGKILL mid-job (the whole
worker, or its pool process), the workers' PostgreSQL connections terminated, and a Redis
broker (this test's own, without persistence) restarted with jobs queued.

Each asserts that every job ends done within a bound, that every artifact exists exactly
once, and that nothing rendered before the fault is rendered again. The time from each
fault to the job's end is printed. Tiny renders (a channel is well under a second) and
short timings (a heartbeat stale after 4 s, a sweep every second) keep it fast.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone
from kombu import Connection

from jobs import planning, tasks
from jobs.models import Artifact, ArtifactKind, RenderJob
from neurons.models import Layer, Model
from tests.conftest import REPO
from tests.jobs.test_render_worker import answers, database_url

pytestmark = [pytest.mark.fault, pytest.mark.broker, pytest.mark.django_db(transaction=True)]

# A channel takes about half a second here, so that a fault lands mid-job.
RENDER = {"steps": 12, "size": 32}
CHANNELS = 10
STALE, SWEEP, REPUBLISH = 4, 1, 3
BOUND = 90  # seconds from a fault to the job's end, at most (a loaded CI machine)
RABBITMQ = ("amqp://guest:guest@127.0.0.1:5672//", 5672)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what: Callable[[], bool], timeout: float, message: Callable[[], str]) -> None:
    deadline = time.monotonic() + timeout
    while not what():
        if time.monotonic() > deadline:
            raise AssertionError(message())
        time.sleep(0.2)


@dataclass
class Redis:
    """This test's own redis-server on a free port, keeping nothing on disk."""

    port: int
    folder: Path
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.folder)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_for(lambda: answers(self.port), 20, lambda: "redis-server did not start")

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait()


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[Redis]:
    if shutil.which("redis-server") is None:
        pytest.skip("no redis-server on this machine")
    server = Redis(free_port(), tmp_path)
    server.start()
    yield server
    server.kill()


class Worker:
    """A real `celery worker` (prefork, one pool process) in a process group of its own."""

    def __init__(self, broker: str, folder: Path, name: str) -> None:
        self.broker = broker
        self.log_path = folder / f"{name}.log"
        env = {
            **os.environ,
            "DATABASE_URL": database_url(),  # the test's own database
            "CELERY_BROKER_URL": broker,
            "MEDIA_ROOT": str(settings.MEDIA_ROOT),
            "MICROSCOPE_WEIGHTS_DIR": str(settings.WEIGHTS_DIR),
            "MICROSCOPE_VAR_DIR": str(folder / "var"),
            "MICROSCOPE_RENDER_BATCH": "1",  # an artifact per channel, stored as it is made
            "MICROSCOPE_JOB_STALE_SECONDS": str(STALE),
            "MICROSCOPE_JOB_SWEEP_SECONDS": str(SWEEP),
            "MICROSCOPE_JOB_REPUBLISH_SECONDS": str(REPUBLISH),
        }
        self.log_file = open(self.log_path, "w")  # a file: a full pipe would stall it
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "microscope", "worker", "-Q", "gpu",
             "--concurrency", "1", "--without-gossip", "--without-mingle", "-n", f"{name}@%h",
             "--loglevel", "INFO"],
            cwd=REPO, env=env, stdout=self.log_file, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        wait_for(lambda: " ready." in self.log() or self.process.poll() is not None, 120, self.log)
        assert self.process.poll() is None, self.log()

    def log(self) -> str:
        return self.log_path.read_text()

    def pool_pid(self) -> int:
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return int(children.read_text().split()[0])

    def kill(self) -> None:
        """SIGKILL to every process of the worker, as a supervisor stopping its cgroup does."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait()
        self.log_file.close()


@pytest.fixture
def workers() -> Iterator[list[Worker]]:
    started: list[Worker] = []
    yield started
    for worker in started:
        worker.kill()


@pytest.fixture
def layer(mobilenet: Model) -> Layer:
    if connection.vendor != "postgresql":
        pytest.skip("the workers need the test database on a server (PostgreSQL)")
    return mobilenet.layers.get(name="features_2")


def publish(broker: str, channels: range, layer: Layer) -> RenderJob:
    """A job, published as the site publishes it on commit."""
    job = planning.render_job_create(
        model=layer.model, layer=layer, kind=ArtifactKind.FEATUREVIS, params=RENDER,
        channels=channels, enqueue=False,
    )  # fmt: skip
    RenderJob.objects.filter(pk=job.pk).update(published=timezone.now(), publishes=1)
    with Connection(broker) as connection_:
        tasks.render_task.apply_async(args=[job.pk], task_id=job.task_id, connection=connection_)
    return job


def purge(broker: str) -> None:
    with Connection(broker) as connection_:
        try:
            connection_.default_channel.queue_purge("gpu")
        except Exception:  # no such queue yet
            pass


def rendered(job: RenderJob) -> dict[str, tuple[int, object]]:
    """key -> (row id, created) of the job's artifacts so far."""
    rows = Artifact.objects.filter(layer=job.layer, neuron__index__in=range(CHANNELS))
    return {a.key: (a.pk, a.created) for a in rows}


def when_rendering(job: RenderJob, workers: list[Worker], at_least: int = 3) -> None:
    def far_enough() -> bool:
        job.refresh_from_db()
        return job.progress_done >= at_least

    wait_for(far_enough, 120, lambda: "\n".join(w.log() for w in workers))


def ends_done(job: RenderJob, workers: list[Worker], since: float, fault: str) -> float:
    def ended() -> bool:
        job.refresh_from_db()
        return not job.is_active

    wait_for(
        ended, BOUND, lambda: f"{job.status} {job.error}\n" + "\n".join(w.log() for w in workers)
    )
    took = time.monotonic() - since
    assert job.status == RenderJob.Status.DONE, job.error
    print(f"\n{fault}: the job ended {job.status} {took:.1f} s after the fault")
    return took


def assert_each_artifact_once_and_none_redone(
    job: RenderJob, before: dict[str, tuple[int, object]], channels: int = CHANNELS
) -> None:
    after = rendered(job)
    assert len(after) == channels  # one per channel: keys are unique
    assert Artifact.objects.filter(layer=job.layer).count() == channels
    for key, row in before.items():
        assert after[key] == row  # the same row, made before the fault


@pytest.fixture(params=["redis", "rabbitmq"])
def broker(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """This test's own Redis, or the machine's RabbitMQ (its "gpu" queue purged)."""
    if request.param == "rabbitmq":
        url, port = RABBITMQ
        if not answers(port):
            pytest.skip("no RabbitMQ on 127.0.0.1:5672")
        request.getfixturevalue("shared_brokers")
        purge(url)
        yield url
        return
    yield request.getfixturevalue("redis").url


def test_the_whole_worker_killed_and_restarted_at_once(
    layer: Layer, broker: str, workers: list[Worker], tmp_path: Path
) -> None:
    workers.append(Worker(broker, tmp_path, "first"))
    job = publish(broker, range(CHANNELS), layer)
    when_rendering(job, workers)
    before = rendered(job)
    workers[0].kill()
    fault = time.monotonic()
    workers.append(Worker(broker, tmp_path, "second"))  # as a supervisor restarts it
    ends_done(job, workers, fault, f"worker killed (SIGKILL, all its processes), {broker}")
    assert job.attempts == 2  # taken over once
    assert_each_artifact_once_and_none_redone(job, before)


def test_the_pool_process_killed(
    layer: Layer, broker: str, workers: list[Worker], tmp_path: Path
) -> None:
    workers.append(Worker(broker, tmp_path, "pool"))
    job = publish(broker, range(CHANNELS), layer)
    when_rendering(job, workers)
    before = rendered(job)
    os.kill(workers[0].pool_pid(), signal.SIGKILL)
    fault = time.monotonic()
    ends_done(job, workers, fault, f"pool process killed (SIGKILL), {broker}")
    assert job.attempts == 2
    assert_each_artifact_once_and_none_redone(job, before)


def test_the_workers_database_connections_terminated_mid_job(
    layer: Layer, redis: Redis, workers: list[Worker], tmp_path: Path
) -> None:
    workers.append(Worker(redis.url, tmp_path, "db"))
    job = publish(redis.url, range(CHANNELS), layer)
    when_rendering(job, workers)
    before = rendered(job)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        (terminated,) = cursor.fetchone()
    fault = time.monotonic()
    assert terminated >= 1
    ends_done(job, workers, fault, f"{terminated} database connections terminated")
    assert_each_artifact_once_and_none_redone(job, before)


def test_a_broker_restarted_without_its_queued_messages(
    layer: Layer, redis: Redis, workers: list[Worker], tmp_path: Path
) -> None:
    workers.append(Worker(redis.url, tmp_path, "broker"))
    running = publish(redis.url, range(CHANNELS - 4), layer)
    queued = [publish(redis.url, range(c, c + 2), layer) for c in (CHANNELS - 4, CHANNELS - 2)]
    when_rendering(running, workers, at_least=2)
    redis.kill()
    redis.start()  # empty: the queued jobs' messages are gone
    fault = time.monotonic()
    for job in [running, *queued]:
        ends_done(job, workers, fault, f"Redis restarted empty: job {job.pk}")
    assert Artifact.objects.filter(layer=layer).count() == CHANNELS
    assert len({a.key for a in Artifact.objects.filter(layer=layer)}) == CHANNELS
