"""`manage.py render`: queues or runs renders; bad input is a message, not a traceback."""

from __future__ import annotations

from io import StringIO
from pathlib import Path

import pytest
import torch
from django.core.management import CommandError, call_command
from pytest_django.fixtures import Settings

from jobs.models import Artifact, ArtifactKind, RenderJob
from neurons.models import Model
from tests.jobs.conftest import execute


def render(*args: str) -> str:
    out = StringIO()
    call_command("render", *args, stdout=out, verbosity=0)
    return out.getvalue()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["resnet9000"], "unknown model 'resnet9000'"),
        (["mobilenet_v2", "mixed4c"], "unknown layer 'mixed4c' in mobilenet_v2"),
        (["mobilenet_v2", "f2", "--channels", "x-3"], "bad channel range 'x-3'"),
        (["mobilenet_v2", "f2", "--channels", "5-1"], "1 comes before 5"),
        (["mobilenet_v2", "f2", "--channels", "0-99"], "which has channels 0-23"),
        (["mobilenet_v2", "--channels", "100000-100001"], "widest layer of mobilenet_v2 has 1280"),
        (["mobilenet_v2", "f2", "--channels", "30-40"], "which has channels 0-23"),
        (["mobilenet_v2", "--channels", "9" * 5000], "bad channel range"),
        (["mobilenet_v2", "f2", "--steps", "0"], "steps must be at least 1"),
        (["mobilenet_v2", "--no-featurevis"], "--no-featurevis needs --examples PATH"),
        (["mobilenet_v2", "--examples", "/no/such/folder"], "/no/such/folder is not a folder"),
    ],
)
def test_bad_input_is_a_command_error_that_says_what_is_wrong(
    mobilenet: Model, args: list[str], message: str
) -> None:
    with pytest.raises(CommandError) as caught:
        render(*args)
    assert message in str(caught.value)
    assert not RenderJob.objects.exists()


def test_a_model_without_weights_is_a_command_error_with_the_fix(inceptionv1: Model) -> None:
    with pytest.raises(CommandError) as caught:
        render("inceptionv1", "4c")
    assert "weights missing for inceptionv1: run `python manage.py add_model" in str(caught.value)
    assert not RenderJob.objects.exists()


def test_it_queues_one_job_per_layer_and_objective_on_commit(
    mobilenet: Model, django_capture_on_commit_callbacks
) -> None:
    with django_capture_on_commit_callbacks() as callbacks:
        output = render(
            "mobilenet_v2", "f2", "f3", "--channels", "0-7",
            "--objective", "channel", "--objective", "negative", "--steps", "64",
        )  # fmt: skip
    assert "0 feature visualizations already rendered, 32 to render\n4 job(s)" in output
    assert len(callbacks) == 4
    assert set(RenderJob.objects.values_list("layer__name", "kind")) == {
        ("features_2", "featurevis"), ("features_2", "featurevis_negative"),
        ("features_3", "featurevis"), ("features_3", "featurevis_negative"),
    }  # fmt: skip
    assert {job.params["steps"] for job in RenderJob.objects.all()} == {64}


def test_a_range_for_every_layer_is_cut_to_each_layers_size(mobilenet: Model) -> None:
    output = render("mobilenet_v2", "--channels", "0-19", "--examples", "demo/photos")
    # 19 layers, features_1 has 16 channels: 18 * 20 + 16 feature visualizations; one sweep.
    assert "376 to render\n20 job(s)" in output
    sweep = RenderJob.objects.get(kind=ArtifactKind.EXAMPLES)
    assert sweep.layer is None and (sweep.channel_start, sweep.channel_stop) == (0, 20)


def test_sync_renders_here_and_a_second_run_renders_nothing(mobilenet: Model, corpus: Path) -> None:
    args = ["mobilenet_v2", "f2", "--channels", "0-1", "--steps", "4", "--size", "32"]
    render(*args, "--sync", "--examples", str(corpus))
    assert Artifact.objects.filter(kind=ArtifactKind.FEATUREVIS).count() == 2
    assert Artifact.objects.filter(kind=ArtifactKind.EXAMPLES).count() == 2
    assert set(RenderJob.objects.values_list("status", flat=True)) == {"done"}
    output = render(*args, "--sync")
    assert "2 feature visualizations already rendered, 0 to render\n0 job(s)" in output
    assert Artifact.objects.count() == 4


@pytest.mark.parametrize("device", ["cuda", "cuda:99"])
def test_a_render_device_this_machine_lacks_fails_the_job_in_one_line(
    mobilenet: Model, settings: Settings, caplog: pytest.LogCaptureFixture, device: str
) -> None:
    if device == "cuda" and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    queued = render("mobilenet_v2", "f2", "--channels", "0-3", "--steps", "2")  # for workers
    assert "1 job(s)" in queued
    settings.MICROSCOPE_RENDER_DEVICE = device

    for command, args in (("render", ["f2", "--channels", "0"]), ("atlas", [])):
        with pytest.raises(CommandError) as caught:
            call_command(command, "mobilenet_v2", *args, "--sync", stdout=StringIO(), verbosity=0)
        assert f"MICROSCOPE_RENDER_DEVICE={device}, but worker" in str(caught.value)

    # Refused before anything was planned: the workers' job is still theirs to run.
    (job,) = RenderJob.objects.all()
    assert job.status == RenderJob.Status.QUEUED and not job.error
    assert not [r for r in caplog.records if r.exc_info]  # no traceback in the log
    assert not Artifact.objects.exists()

    # A worker with that device fails the job it takes in one line.
    execute(job)
    assert (
        job.status == RenderJob.Status.FAILED and f"MICROSCOPE_RENDER_DEVICE={device}" in job.error
    )
    assert not [r for r in caplog.records if r.exc_info]
