"""Connecting weights: a job per layer stores each neuron's strongest inputs (and the lower
layer's strongest outputs); neuron pages show them. Worker steps run here on MobileNetV2's
real weights, on the CPU (a layer takes about a second)."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
import pytest
from django.conf import settings
from django.core.management import call_command
from django.test import Client
from PIL import Image

from jobs import lifecycle, params, planning, runner, selectors
from jobs.models import Artifact, ArtifactKind, RenderJob
from neurons.models import Layer, Model, Neuron
from render import organisms
from render.weights import expanded_weights, input_ranking, strongest_outputs
from tests.jobs.conftest import execute
from tests.jobs.test_render_pages import stored


def weights_job(layer: Layer) -> RenderJob:
    plan = planning.render_request(
        model=layer.model, layers=[layer], kinds=[ArtifactKind.WEIGHTS], enqueue=False
    )
    (job,) = plan.jobs
    return job


def brute_force(model: Model, layer: str) -> object:
    """Expanded weights computed here, apart from the worker."""
    organism = organisms.get(model.slug)
    loaded = organisms.load(organism, organisms.find_weights(organism, Path("/nonexistent")))
    return expanded_weights(loaded.model, organism, layer)


def stored_weights(layer: Layer, direction: str) -> dict[int, dict]:
    rows = Artifact.objects.filter(
        layer=layer, kind=ArtifactKind.WEIGHTS, params__direction=direction
    )
    return {artifact.neuron.index: artifact.data for artifact in rows.select_related("neuron")}


@pytest.fixture
def f2(mobilenet: Model) -> Layer:
    return mobilenet.layers.get(name="features_2")


def test_a_weights_job_stores_strongest_inputs_ranked_as_render_weights_ranks_them(
    mobilenet: Model, f2: Layer
) -> None:
    job = weights_job(f2)
    assert execute(job) is lifecycle.ClaimOutcome.CLAIMED
    assert job.status == RenderJob.Status.DONE, job.error
    inputs = stored_weights(f2, params.INPUTS)
    assert sorted(inputs) == list(range(f2.channels))  # every neuron of features_2
    w = brute_force(mobilenet, "features_2")
    for channel in (0, 5, 23):
        ranking = input_ranking(w, channel)[: params.WEIGHTS_TOP]
        data = inputs[channel]
        assert data["other"] == "features_1" and data["count"] == 16
        assert [c["channel"] for c in data["connections"]] == [c.channel for c in ranking]
        assert [c["rank"] for c in data["connections"]] == list(range(1, 11))
        # Signs are what each input adds at the neuron's peaks on corpus images.
        assert data["signs_from"] == f"32 images of {settings.MICROSCOPE_EXAMPLES_DIR}"
        for entry, expected in zip(data["connections"], ranking, strict=True):
            assert entry["strength"] == pytest.approx(expected.strength, rel=1e-5)
            assert entry["sign"] == (1 if entry["contribution"] >= 0 else -1)
            assert entry["skip"] is False  # features_2 widens 16 -> 24: no identity skip
            png = base64.b64decode(entry["heatmap"].removeprefix("data:image/png;base64,"))
            rgb = np.asarray(Image.open(io.BytesIO(png)), dtype=float)
            assert np.sign((rgb[..., 0] - rgb[..., 2]).sum()) == entry["sign"]  # red: adds
            assert len(entry["kernel"]) == data["kernel_size"][0]


def test_the_same_job_stores_the_lower_layers_strongest_outputs(
    mobilenet: Model, f2: Layer
) -> None:
    execute(weights_job(f2))
    f1 = mobilenet.layers.get(name="features_1")
    outputs = stored_weights(f1, params.OUTPUTS)
    assert sorted(outputs) == list(range(f1.channels))
    w = brute_force(mobilenet, "features_2")
    expected = [c.channel for c in strongest_outputs(w, 3, params.WEIGHTS_TOP)]
    assert [c["channel"] for c in outputs[3]["connections"]] == expected
    assert outputs[3]["other"] == "features_2" and outputs[3]["count"] == f2.channels


def test_asking_again_makes_no_job_and_the_lowest_layer_needs_none(
    mobilenet: Model, f2: Layer
) -> None:
    execute(weights_job(f2))
    again = planning.render_request(model=mobilenet, layers=[f2], kinds=[ArtifactKind.WEIGHTS])
    lowest = planning.render_request(
        model=mobilenet, layers=[mobilenet.layers.get(position=0)], kinds=[ArtifactKind.WEIGHTS]
    )
    assert again.jobs == [] and lowest.jobs == []


def test_the_render_command_computes_weights(mobilenet: Model) -> None:
    call_command("render", "mobilenet_v2", "f1", "--weights", "--no-featurevis", "--sync",
                 verbosity=0)  # fmt: skip
    f1 = mobilenet.layers.get(name="features_1")
    assert len(stored_weights(f1, params.INPUTS)) == f1.channels
    job = RenderJob.objects.get(kind=ArtifactKind.WEIGHTS)
    assert job.status == RenderJob.Status.DONE and job.layer == f1


def test_the_button_asks_for_the_weights_a_neuron_page_lacks(mobilenet: Model, f2: Layer) -> None:
    neuron = Neuron.objects.get(layer=f2, index=5)
    plan = planning.render_request_neuron(neuron=neuron)
    weights = {job.layer.name for job in plan.jobs if job.kind == ArtifactKind.WEIGHTS}
    assert weights == {"features_2", "features_3"}  # its inputs, and its outputs
    for job in plan.jobs:
        if job.kind == ArtifactKind.WEIGHTS:
            runner.render_job_execute(job_id=job.pk)
    assert selectors.weights_missing(neuron=neuron) == []
    visuals = selectors.neuron_visuals(neuron=neuron)
    assert ArtifactKind.WEIGHTS.label not in visuals.missing


def test_a_neuron_page_shows_strongest_inputs_and_outputs_with_thumbnails(
    client: Client, mobilenet: Model, f2: Layer, django_assert_max_num_queries: object
) -> None:
    execute(weights_job(f2))
    execute(weights_job(mobilenet.layers.get(name="features_3")))
    neuron = Neuron.objects.select_related("layer__model").get(layer=f2, index=5)
    top_input = stored_weights(f2, params.INPUTS)[5]["connections"][0]
    source = Neuron.objects.get(layer__name="features_1", layer__model=mobilenet,
                                index=top_input["channel"])  # fmt: skip
    thumbnail = stored(source, ArtifactKind.FEATUREVIS)
    # Layers, weights, neurons, pictures, labels; then the job states of the neurons
    # without a picture.
    with django_assert_max_num_queries(6):
        weights = selectors.neuron_weights(neuron=neuron)
    assert [link.rank for link in weights.inputs.links] == list(range(1, 11))
    assert weights.outputs.layer.name == "features_3" and len(weights.outputs.links) == 10

    page = client.get(neuron.get_absolute_url()).content.decode()
    assert 'id="strongest-inputs"' in page and 'id="strongest-outputs"' in page
    assert f"f1:{top_input['channel']}" in page
    assert thumbnail.urls[0] in page
    assert "data:image/png;base64," in page
    assert "excitatory" in page or "inhibitory" in page
    assert "Not computed yet" not in page


def test_pages_say_what_is_not_computed_and_what_cannot_be(
    client: Client, mobilenet: Model, inceptionv1: Model
) -> None:
    lowest = Neuron.objects.get(layer__model=mobilenet, layer__position=0, index=0)
    page = client.get(lowest.get_absolute_url()).content.decode()
    assert "lowest significant layer" in page and "Not computed yet" in page

    no_weights = Neuron.objects.get(layer__model=inceptionv1, layer__name="mixed4c", index=447)
    response = client.get(no_weights.get_absolute_url())
    assert response.status_code == 200
    assert 'id="weights-missing"' in response.content.decode()
