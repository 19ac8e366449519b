from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from jobs import lifecycle, planning, runner
from jobs.models import ArtifactKind, RenderJob
from microscope.celery import app
from neurons.models import Layer, Model
from tests.conftest import REPO

# Tiny budgets: the renders are real, on the CPU, and must stay fast.
TINY = {"steps": 4, "size": 32}
DEMO_PHOTOS = REPO / "demo" / "photos"


@pytest.fixture
def layer(mobilenet: Model) -> Layer:
    """An early MobileNetV2 block: cheap to reach, 24 channels."""
    return mobilenet.layers.get(name="features_2")


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """Six of the demo's photos."""
    folder = tmp_path / "corpus"
    folder.mkdir()
    for name in sorted(p.name for p in DEMO_PHOTOS.glob("*.jpg"))[:6]:
        shutil.copyfile(DEMO_PHOTOS / name, folder / name)
    return folder


@pytest.fixture
def eager() -> Iterator[None]:
    """Tasks run in this process when sent: the enqueue path without a broker."""
    app.conf.task_always_eager = True
    try:
        yield
    finally:
        app.conf.task_always_eager = False


def featurevis_job(layer: Layer, channels: range, kind: str = ArtifactKind.FEATUREVIS) -> RenderJob:
    return planning.render_job_create(
        model=layer.model, layer=layer, kind=kind, params=TINY, channels=channels, enqueue=False
    )


def execute(job: RenderJob) -> lifecycle.ClaimOutcome:
    claim = runner.render_job_execute(job_id=job.pk)
    job.refresh_from_db()
    return claim
