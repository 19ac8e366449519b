"""Render jobs: created then enqueued on commit, claimed once, idempotent, failing readably."""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.utils import timezone
from PIL import Image

import render
from jobs import lifecycle, planning
from jobs.models import Artifact, ArtifactKind, RenderJob, artifact_key
from neurons.models import Layer, Model
from tests.jobs.conftest import TINY, execute, featurevis_job


def test_a_job_is_enqueued_with_its_id_only_once_its_row_is_committed(
    layer: Layer, django_capture_on_commit_callbacks, eager: None
) -> None:
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        job = planning.render_job_create(
            model=layer.model,
            layer=layer,
            kind=ArtifactKind.FEATUREVIS,
            params=TINY,
            channels=range(1),
        )
        job.refresh_from_db()
        assert job.status == RenderJob.Status.QUEUED  # nothing sent before the commit
    assert len(callbacks) == 1
    job.refresh_from_db()  # the task ran (eagerly) with the id it was sent
    assert job.status == RenderJob.Status.DONE, job.error
    assert job.attempts == 1 and job.task_id
    assert Artifact.objects.filter(job=job).count() == 1


def test_a_render_stores_each_channel_with_the_params_and_hash_that_made_it(
    layer: Layer, mobilenet: Model
) -> None:
    job = featurevis_job(layer, range(2))
    assert execute(job) is lifecycle.ClaimOutcome.CLAIMED
    assert job.status == RenderJob.Status.DONE, job.error
    assert (job.progress_done, job.progress_total) == (2, 2)
    artifacts = list(Artifact.objects.filter(job=job).order_by("neuron__index"))
    assert [a.neuron.index for a in artifacts] == [0, 1]
    for artifact in artifacts:
        assert artifact.params == {
            "kind": "featurevis",
            "model": "mobilenet_v2",
            "weights_sha256": mobilenet.weights_sha256,
            "layer": "features_2",
            "channel": artifact.neuron.index,
            "objective": "channel",
            "steps": 4,
            "size": 32,
            "seed": 0,
            "lr": 0.05,
            "code_version": render.CODE_VERSION,
        }
        assert artifact.key == artifact_key(**artifact.params)
        [name] = artifact.files
        with default_storage.open(name) as f:
            assert Image.open(io.BytesIO(f.read())).size == (32, 32)
    assert artifacts[0].key != artifacts[1].key


def test_a_second_identical_request_renders_nothing(layer: Layer) -> None:
    first = planning.render_request(
        model=layer.model, layers=[layer], kinds=[ArtifactKind.FEATUREVIS], channels=range(2),
        featurevis=TINY, enqueue=False,
    )  # fmt: skip
    [job] = first.jobs
    execute(job)
    again = planning.render_request(
        model=layer.model, layers=[layer], kinds=[ArtifactKind.FEATUREVIS], channels=range(2),
        featurevis=TINY, enqueue=False,
    )  # fmt: skip
    assert (again.jobs, again.existing, again.missing) == ([], 2, 0)


def test_asking_again_while_a_job_is_queued_joins_that_job(layer: Layer) -> None:
    ask = {
        "model": layer.model,
        "layers": [layer],
        "kinds": [ArtifactKind.FEATUREVIS],
        "featurevis": TINY,
    }
    first = planning.render_request(**ask, channels=range(3), enqueue=False)
    second = planning.render_request(**ask, channels=range(3), enqueue=False)
    assert [job.pk for job in second.jobs] == [job.pk for job in first.jobs]
    assert RenderJob.objects.count() == 1


def test_asking_for_channels_a_queued_job_has_joins_it_and_more_makes_a_job(
    layer: Layer,
) -> None:
    """A neuron page asking for its channel while the atlas's job of 8 is queued."""
    ask = {
        "model": layer.model,
        "layers": [layer],
        "kinds": [ArtifactKind.FEATUREVIS],
        "featurevis": TINY,
        "enqueue": False,
    }
    (atlas_job,) = planning.render_request(**ask, channels=range(8)).jobs
    for inside in (range(3, 4), range(0, 8), range(5, 8)):
        plan = planning.render_request(**ask, channels=inside)
        assert [job.pk for job in plan.jobs] == [atlas_job.pk], inside
    assert RenderJob.objects.count() == 1
    for beyond in (range(6, 10), None):  # partly outside, and the whole layer
        (job,) = planning.render_request(**ask, channels=beyond).jobs
        assert job.pk != atlas_job.pk
    other_seed = planning.render_request(
        **ask | {"featurevis": TINY | {"seed": 7}}, channels=range(1)
    )
    assert [job.pk for job in other_seed.jobs] != [atlas_job.pk]  # other images: a job of its own
    assert RenderJob.objects.count() == 4
    twice = planning.render_request(
        **ask | {"kinds": ["featurevis", "featurevis"]}, channels=range(2)
    )
    assert [job.pk for job in twice.jobs] == [atlas_job.pk] and twice.missing == 2


def test_a_redelivered_message_for_a_done_job_does_nothing(layer: Layer) -> None:
    job = featurevis_job(layer, range(1))
    execute(job)
    files = Artifact.objects.get(job=job).files
    assert execute(job) is lifecycle.ClaimOutcome.FINISHED
    assert job.attempts == 1 and job.status == RenderJob.Status.DONE
    assert Artifact.objects.count() == 1 and Artifact.objects.get(job=job).files == files


def test_a_redelivered_message_for_a_running_job_leaves_it_to_its_live_worker(
    layer: Layer,
) -> None:
    job = featurevis_job(layer, range(1))
    RenderJob.objects.filter(pk=job.pk).update(
        status=RenderJob.Status.RUNNING, heartbeat=timezone.now(), attempts=1
    )
    assert execute(job) is lifecycle.ClaimOutcome.BUSY
    assert job.attempts == 1 and not Artifact.objects.exists()


def test_a_job_whose_worker_died_is_taken_over_and_renders_only_what_is_missing(
    layer: Layer, settings
) -> None:
    done_before = featurevis_job(layer, range(1))
    execute(done_before)
    kept = Artifact.objects.get()
    job = featurevis_job(layer, range(2))
    stale = timezone.now() - timedelta(seconds=settings.MICROSCOPE_JOB_STALE_SECONDS + 1)
    RenderJob.objects.filter(pk=job.pk).update(
        status=RenderJob.Status.RUNNING, heartbeat=stale, attempts=1
    )
    assert execute(job) is lifecycle.ClaimOutcome.CLAIMED
    assert job.status == RenderJob.Status.DONE and job.attempts == 2
    assert Artifact.objects.filter(job=job).count() == 1  # channel 1 only
    assert Artifact.objects.get(neuron__index=0) == kept


def test_a_worker_starting_up_queues_again_the_jobs_of_dead_workers(
    layer: Layer, settings, eager: None
) -> None:
    job = featurevis_job(layer, range(1))
    stale = timezone.now() - timedelta(seconds=settings.MICROSCOPE_JOB_STALE_SECONDS + 1)
    RenderJob.objects.filter(pk=job.pk).update(status=RenderJob.Status.RUNNING, heartbeat=stale)
    fresh = featurevis_job(layer, range(1, 2))
    RenderJob.objects.filter(pk=fresh.pk).update(
        status=RenderJob.Status.RUNNING, heartbeat=timezone.now()
    )
    assert lifecycle.render_job_recover() == [job.pk]
    job.refresh_from_db()
    assert job.status == RenderJob.Status.DONE


def test_a_job_for_a_model_without_weights_fails_with_its_reason(inceptionv1: Model) -> None:
    layer = inceptionv1.layers.get(name="mixed4c")
    job = featurevis_job(layer, range(447, 448))
    assert execute(job) is lifecycle.ClaimOutcome.CLAIMED
    assert job.status == RenderJob.Status.FAILED
    assert job.error.startswith(
        "weights missing for inceptionv1: run `python manage.py add_model inceptionv1 "
        "--weights PATH`"
    )
    assert job.finished is not None and not Artifact.objects.exists()


def test_a_request_for_a_model_without_weights_is_refused_with_the_reason(
    inceptionv1: Model,
) -> None:
    with pytest.raises(ValidationError) as caught:
        planning.render_request(
            model=inceptionv1,
            layers=list(inceptionv1.layers.all()),
            kinds=[ArtifactKind.FEATUREVIS],
        )
    assert "weights missing for inceptionv1" in caught.value.message_dict["model"][0]


@pytest.mark.parametrize(
    ("ask", "field", "message"),
    [
        ({"featurevis": {"steps": 0}}, "steps", "steps must be at least 1"),
        ({"featurevis": {"size": 8}}, "size", "size must be at least 16 px"),
        ({"channels": range(20, 30)}, "channels", "which has channels 0-23"),
        ({"kinds": ["sketch"]}, "kind", "unknown kind 'sketch'"),
        (
            {"kinds": [ArtifactKind.EXAMPLES], "examples": {"corpus": "/no/such/folder"}},
            "examples",
            "",
        ),
    ],
)
def test_bad_requests_are_refused_with_the_field_and_a_message(
    layer: Layer, ask: dict, field: str, message: str
) -> None:
    ask = {"model": layer.model, "layers": [layer], "kinds": [ArtifactKind.FEATUREVIS], **ask}
    with pytest.raises(ValidationError) as caught:
        planning.render_request(**ask, enqueue=False)
    assert message in caught.value.message_dict[field][0]
    assert not RenderJob.objects.exists()


def test_dataset_examples_keep_top_and_bottom_images_positions_and_histogram(
    mobilenet: Model, corpus: Path
) -> None:
    layer = mobilenet.layers.get(name="features_16")  # 7x7 positions
    plan = planning.render_request(
        model=mobilenet, layers=[layer], kinds=[ArtifactKind.EXAMPLES], channels=range(2),
        examples={"corpus": str(corpus), "k": 4}, enqueue=False,
    )  # fmt: skip
    [job] = plan.jobs
    assert execute(job) is lifecycle.ClaimOutcome.CLAIMED and job.status == RenderJob.Status.DONE, (
        job.error
    )
    assert (job.progress_done, job.progress_total) == (6, 6)
    artifacts = list(Artifact.objects.filter(kind=ArtifactKind.EXAMPLES).order_by("neuron__index"))
    assert [a.neuron.index for a in artifacts] == [0, 1]
    data = artifacts[0].data
    assert data["images"] == 6 and data["grid"] == [7, 7] and data["corpus"] == str(corpus)
    assert len(data["top"]) == 4 and len(data["bottom"]) == 4
    values = [entry["value"] for entry in data["top"]]
    assert values == sorted(values, reverse=True)
    assert data["top"][0]["value"] >= data["bottom"][0]["value"]
    for entry in data["top"] + data["bottom"]:
        assert 0 <= entry["pos"][0] < 7 and 0 <= entry["pos"][1] < 7
        left, top, right, bottom = entry["box"]
        assert 0 <= left < right <= 224 and 0 <= top < bottom <= 224
        with default_storage.open(entry["file"]) as f:
            assert Image.open(io.BytesIO(f.read())).size == (224, 224)
    assert sum(data["histogram"]["counts"]) == 6 * 7 * 7
    # Each neuron's one file: its top example's receptive-field crop (its thumbnail until it
    # has a feature visualization), cut from the stored image.
    for artifact in artifacts:
        [crop_name] = artifact.files
        top = artifact.data["top"][0]
        assert top["value"] > 0
        with default_storage.open(top["file"]) as f:
            whole = Image.open(io.BytesIO(f.read())).convert("RGB")
        with default_storage.open(crop_name) as f:
            crop = Image.open(io.BytesIO(f.read())).convert("RGB")
        assert crop.size == (96, 96)
        expected = whole.crop(tuple(top["box"])).resize((96, 96), Image.Resampling.LANCZOS)
        error = np.abs(np.asarray(crop, dtype=int) - np.asarray(expected, dtype=int)).mean()
        assert error < 4, error  # the same crop, up to JPEG's rounding
    assert artifacts[0].key == artifact_key(**artifacts[0].params)
    assert len(artifacts[0].params["corpus_sha256"]) == 64

    # The same sweep asked again finds every key stored: no new rows, nothing swept.
    again = planning.render_request(
        model=mobilenet, layers=[layer], kinds=[ArtifactKind.EXAMPLES], channels=range(2),
        examples={"corpus": str(corpus), "k": 4}, enqueue=False,
    )  # fmt: skip
    execute(again.jobs[0])
    assert again.jobs[0].status == RenderJob.Status.DONE
    assert Artifact.objects.filter(kind=ArtifactKind.EXAMPLES).count() == 2


def test_the_sweep_publishes_again_a_queued_job_whose_message_was_lost(
    layer: Layer, settings, eager: None
) -> None:
    job = featurevis_job(layer, range(1))  # never published: as if the broker lost it
    long_ago = timezone.now() - timedelta(seconds=settings.MICROSCOPE_JOB_REPUBLISH_SECONDS + 1)
    RenderJob.objects.filter(pk=job.pk).update(published=long_ago, publishes=1)
    recent = featurevis_job(layer, range(1, 2))
    RenderJob.objects.filter(pk=recent.pk).update(published=timezone.now(), publishes=1)
    assert lifecycle.render_job_sweep() == {"recovered": [], "republished": [job.pk]}
    job.refresh_from_db()
    recent.refresh_from_db()
    assert job.status == RenderJob.Status.DONE and job.publishes == 2
    assert recent.status == RenderJob.Status.QUEUED  # its message is still on its way


def test_the_sweep_waits_longer_each_time_it_publishes_a_job_again(layer: Layer, settings) -> None:
    job = featurevis_job(layer, range(1))
    bound = settings.MICROSCOPE_JOB_REPUBLISH_SECONDS
    RenderJob.objects.filter(pk=job.pk).update(
        published=timezone.now() - timedelta(seconds=bound * 3), publishes=3
    )
    assert lifecycle.render_job_sweep()["republished"] == []  # due after 4 x the bound


def test_asking_again_for_what_a_queued_job_holds_publishes_it_again(
    layer: Layer, django_capture_on_commit_callbacks
) -> None:
    ask = {"model": layer.model, "layers": [layer], "kinds": [ArtifactKind.FEATUREVIS]}
    with django_capture_on_commit_callbacks() as first:
        [job] = planning.render_request(**ask, channels=range(2), featurevis=TINY).jobs
    with django_capture_on_commit_callbacks(execute=True) as again:
        [same] = planning.render_request(**ask, channels=range(2), featurevis=TINY).jobs
    assert same.pk == job.pk and len(first) == len(again) == 1
    job.refresh_from_db()
    assert job.publishes == 2 and job.status == RenderJob.Status.QUEUED
