from __future__ import annotations

import io
from collections.abc import Callable

import pytest
from django.contrib.auth.models import User
from PIL import Image
from rest_framework.test import APIClient

from jobs import storage
from jobs.models import Artifact, ArtifactKind, RenderJob
from neurons.models import Model, Neuron

REF = "mobilenet_v2/f16:5"  # the portable form: model/alias:index
URL = "/api/v1/neurons/mobilenet_v2/features_16/5/"


def png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), "teal").save(buffer, format="PNG")
    return buffer.getvalue()


def stored(neuron: Neuron, kind: str, images: int = 1, data: dict | None = None) -> Artifact:
    identity = {"kind": kind, "layer": neuron.layer.name, "channel": neuron.index}
    return storage.artifact_create(
        kind=kind, neuron=neuron, identity=identity, images=[png()] * images, data=data
    )


@pytest.fixture
def neuron(mobilenet: Model) -> Neuron:
    return Neuron.objects.get(layer__model=mobilenet, layer__name="features_16", index=5)


def test_a_neuron_without_renders_says_what_is_missing(api: APIClient, neuron: Neuron) -> None:
    body = api.get(URL).json()
    assert body["ref"] == REF
    assert body["images"] == {
        "thumbnail": None,
        "thumbnail_kind": None,
        "featurevis": None,
        "featurevis_tier": None,
        "featurevis_neuron": None,
        "featurevis_negative": None,
        "featurevis_diversity": [],
        "top_examples": [],
        "bottom_examples": [],
        "histogram": None,
    }
    assert "feature visualization" in body["missing"]
    assert body["cannot_render"] == "" and body["jobs"] == []
    assert body["claims_url"] == "http://testserver/api/v1/claims/?neuron=mobilenet_v2%2Ff16%3A5"


def test_a_neuron_lists_its_images_as_absolute_urls(
    api: APIClient, neuron: Neuron, django_assert_max_num_queries: Callable
) -> None:
    featurevis = stored(neuron, ArtifactKind.FEATUREVIS)
    stored(neuron, ArtifactKind.FEATUREVIS_DIVERSITY, images=4)
    example = storage.example_image_save(name="examples/ab/ab-224.jpg", content=png())
    entry = {
        "image": "0001.jpg",
        "value": 2.5,
        "pos": [3, 4],
        "box": [0, 0, 56, 56],
        "file": example,
    }
    data = {
        "input_size": 224,
        "top": [entry],
        "bottom": [{**entry, "value": -1.0}],
        "histogram": {"edges": [-1.0, 0.0, 1.0], "counts": [2, 7]},
    }
    stored(neuron, ArtifactKind.EXAMPLES, images=0, data=data)
    with django_assert_max_num_queries(13):  # images 9, connections 4, whatever the sizes
        images = api.get(URL).json()["images"]
    assert images["featurevis"] == f"http://testserver{featurevis.urls[0]}"
    assert images["thumbnail"] == images["featurevis"] and images["thumbnail_kind"] == "featurevis"
    assert len(images["featurevis_diversity"]) == 4
    assert images["top_examples"] == [
        {
            "url": "http://testserver/media/examples/ab/ab-224.jpg",
            "image": "0001.jpg",
            "value": 2.5,
            "pos": [3, 4],
        }
    ]
    assert images["bottom_examples"][0]["value"] == -1.0
    assert images["histogram"] == {"edges": [-1.0, 0.0, 1.0], "counts": [2, 7]}


def test_a_neuron_without_a_feature_visualization_has_its_top_examples_crop_as_thumbnail(
    api: APIClient, neuron: Neuron
) -> None:
    crop = storage.example_image_save(name="examples/ab/ab-224-0-0-56-56.jpg", content=png())
    entry = {"image": "0001.jpg", "value": 2.5, "pos": [3, 4], "box": [0, 0, 56, 56]}
    data = {
        "input_size": 224,
        "top": [{**entry, "file": "examples/ab/ab-224.jpg"}],
        "bottom": [],
        "histogram": {"edges": [0.0, 1.0], "counts": [1]},
    }
    examples = stored(neuron, ArtifactKind.EXAMPLES, images=0, data=data)
    Artifact.objects.filter(pk=examples.pk).update(files=[crop])
    images = api.get(URL).json()["images"]
    assert images["thumbnail"] == f"http://testserver/media/{crop}"
    assert images["thumbnail_kind"] == "example" and images["featurevis"] is None


def test_a_render_is_requested_with_a_token_and_polled_by_anyone(
    client_for: Callable[[User], APIClient],
    alice: User,
    api: APIClient,
    neuron: Neuron,
    django_capture_on_commit_callbacks: Callable,
) -> None:
    as_alice = client_for(alice)
    body = {"neuron": "mobilenet_v2/features_16:5", "kinds": ["featurevis"], "steps": 8, "size": 32}
    assert api.post("/api/v1/render-jobs/", body, format="json").status_code == 401
    with django_capture_on_commit_callbacks() as enqueued:  # not run: no broker needed
        response = as_alice.post("/api/v1/render-jobs/", body, format="json")
    assert response.status_code == 202
    plan = response.json()
    assert plan["missing"] == 1 and plan["existing"] == 0
    [job] = plan["jobs"]
    assert job["kind"] == "featurevis" and job["status"] == "queued"
    assert job["model"] == "mobilenet_v2" and job["layer"] == "features_16"
    assert (job["channel_start"], job["channel_stop"]) == (5, 6)
    assert job["params"]["steps"] == 8 and len(enqueued) == 1

    again = as_alice.post("/api/v1/render-jobs/", body, format="json").json()
    assert [j["id"] for j in again["jobs"]] == [job["id"]]  # joined, not queued twice

    polled = api.get(job["api_url"].removeprefix("http://testserver"))
    assert polled.status_code == 200 and polled.json()["status"] == "queued"
    assert api.get("/api/v1/render-jobs/?model=mobilenet_v2&status=queued").json()["results"]
    assert api.get(URL).json()["jobs"][0]["id"] == job["id"]
    assert RenderJob.objects.count() == 1


def test_a_render_request_says_what_is_wrong(
    client_for: Callable[[User], APIClient], alice: User, neuron: Neuron, inceptionv1: Model
) -> None:
    as_alice = client_for(alice)
    cases = [
        ({"neuron": "inceptionv1/4c:447"}, "neuron", "weights"),  # its model lacks them
        ({"neuron": "mobilenet_v2/nope:1"}, "neuron", "unknown layer"),
        ({"neuron": REF, "kinds": ["sketch"]}, "kinds.0", "not a valid choice"),
        ({"neuron": REF, "steps": 100000}, "steps", "less than or equal"),
    ]
    for body, field, message in cases:
        response = as_alice.post("/api/v1/render-jobs/", body, format="json")
        assert response.status_code == 400, body
        fields = response.json()["error"]["fields"]
        assert message in " ".join(fields[field]), (body, fields)
    assert not RenderJob.objects.exists()


def test_an_unknown_render_job_is_a_404(api: APIClient, db: None) -> None:
    response = api.get("/api/v1/render-jobs/999/")
    assert response.status_code == 404
    assert "no render job 999" in response.json()["error"]["message"]


def test_a_neurons_strongest_inputs_and_outputs_are_in_the_api(
    api: APIClient, neuron: Neuron
) -> None:
    """What the page's weight lists show, read from the weights artifacts."""
    layer = neuron.layer
    below = layer.model.layers.get(position=layer.position - 1)
    entry = {
        "channel": 2,
        "strength": 0.5,
        "sign": -1,
        "rank": 1,
        "skip": False,
        "contribution": -0.2,
        "kernel": [[0.5]],
        "heatmap": "data:image/png;base64,",
    }
    stored(
        neuron,
        ArtifactKind.WEIGHTS,
        images=0,
        data={
            "direction": "inputs",
            "other": below.name,
            "count": below.channels,
            "kernel_size": [1, 1],
            "connections": [entry],
        },
    )

    body = api.get(URL).json()["connections"]

    inputs = body["inputs"]
    assert inputs["computed"] and inputs["layer"] == below.name
    assert inputs["count"] == below.channels
    (link,) = inputs["links"]
    assert link["ref"] == f"{below.alias}:2" and link["sign"] == -1 and link["rank"] == 1
    assert link["api_url"].endswith(f"/api/v1/neurons/{layer.model.slug}/{below.name}/2/")
    assert body["outputs"]["computed"] is False and body["outputs"]["links"] == []
