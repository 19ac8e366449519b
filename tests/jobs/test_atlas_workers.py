"""Two real Celery workers on a real broker (this test's own Redis) drain an atlas plan:
every job ends done, both workers take part, and every artifact exists exactly once."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone
from kombu import Connection

from jobs import tasks
from jobs.atlas import atlas_request, coverage
from jobs.models import Artifact, ArtifactKind, RenderJob
from neurons.models import Model
from tests.jobs.conftest import TINY
from tests.jobs.test_faults import Redis, Worker, redis, wait_for, workers

__all__ = ["redis", "workers"]  # fixtures, used by name

pytestmark = [pytest.mark.broker, pytest.mark.django_db(transaction=True)]


def test_two_workers_share_an_atlas_and_make_each_artifact_once(
    mobilenet: Model,
    redis: Redis,
    workers: list[Worker],
    corpus: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("the workers need the test database on a server (PostgreSQL)")
    monkeypatch.setenv("MICROSCOPE_EXAMPLES_DIR", str(corpus))  # the workers' corpus
    layers = [mobilenet.layers.get(name=name) for name in ("features_0", "features_1")]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("django.conf.settings.MICROSCOPE_EXAMPLES_DIR", str(corpus))
        plan = atlas_request(
            model=mobilenet, layers=layers, chunk=8, featurevis=TINY, enqueue=False
        )
    for name in ("one", "two"):
        workers.append(Worker(redis.url, tmp_path, name))
    with Connection(redis.url) as broker:
        for job in plan.jobs:
            RenderJob.objects.filter(pk=job.pk).update(published=timezone.now(), publishes=1)
            tasks.render_task.apply_async(args=[job.pk], task_id=job.task_id, connection=broker)
    ids = [job.pk for job in plan.jobs]

    def drained() -> bool:
        return not any(j.is_active for j in RenderJob.objects.filter(pk__in=ids))

    wait_for(drained, 240, lambda: "\n".join(w.log() for w in workers))

    jobs = list(RenderJob.objects.filter(pk__in=ids))
    assert all(j.status == RenderJob.Status.DONE for j in jobs), [j.error for j in jobs]
    assert len({j.worker for j in jobs}) == 2  # both workers took jobs
    for kind, expected in [
        (ArtifactKind.FEATUREVIS, 32 + 16),
        (ArtifactKind.EXAMPLES, 32 + 16),
        (ArtifactKind.WEIGHTS, 16 + 32),  # features_1's inputs, features_0's outputs
    ]:
        rows = Artifact.objects.filter(layer__in=layers, kind=kind)
        assert rows.count() == expected
        assert rows.values("key").distinct().count() == expected
    assert [r.examples for r in coverage(model=mobilenet)[:2]] == [32, 16]
