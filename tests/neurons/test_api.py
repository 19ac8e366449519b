from __future__ import annotations

from django.test import Client

from neurons.models import Model


def test_the_api_lists_models_with_their_counts(
    client: Client, inceptionv1: Model, mobilenet: Model
) -> None:
    body = client.get("/api/v1/models/").json()
    models = {item["slug"]: item for item in body["results"]}
    assert models["inceptionv1"]["layer_count"] == 12
    assert models["inceptionv1"]["neuron_count"] == 5804
    assert models["inceptionv1"]["has_weights"] is False
    assert models["mobilenet_v2"]["layer_count"] == 19
    assert models["mobilenet_v2"]["neuron_count"] == 2816
    assert models["mobilenet_v2"]["has_weights"] is True
    assert models["inceptionv1"]["url"] == "http://testserver/models/inceptionv1/"


def test_a_model_is_read_by_its_slug(client: Client, inceptionv1: Model) -> None:
    body = client.get("/api/v1/models/inceptionv1/").json()
    assert body["slug"] == "inceptionv1" and body["neuron_count"] == 5804


def test_the_api_lists_the_layers_of_a_model(client: Client, inceptionv1: Model) -> None:
    layers = client.get("/api/v1/models/inceptionv1/layers/").json()
    assert len(layers) == 12
    assert sum(layer["channels"] for layer in layers) == 5804
    mixed4c = next(layer for layer in layers if layer["name"] == "mixed4c")
    assert mixed4c["alias"] == "4c"
    assert mixed4c["url"] == "http://testserver/models/inceptionv1/mixed4c/"
    assert mixed4c["neurons_url"].endswith("/api/v1/models/inceptionv1/layers/mixed4c/neurons/")


def test_neurons_of_a_layer_are_paginated_with_canonical_links(
    client: Client, inceptionv1: Model
) -> None:
    first = client.get("/api/v1/models/inceptionv1/layers/mixed4c/neurons/").json()
    assert first["count"] == 512
    assert len(first["results"]) == 100
    assert first["results"][0]["ref"] == "inceptionv1/4c:0"
    last = client.get("/api/v1/models/inceptionv1/layers/4c/neurons/?page=6").json()
    assert [n["index"] for n in last["results"]] == list(range(500, 512))
    assert last["next"] is None


def test_a_neuron_is_addressed_by_model_layer_and_index(client: Client, inceptionv1: Model) -> None:
    body = client.get("/api/v1/neurons/inceptionv1/mixed4c/447/").json()
    # The catalog's fields; images, jobs and claims follow (tests/api/test_neurons_and_jobs.py).
    assert {key: body[key] for key in list(body)[:7]} == {
        "model": "inceptionv1",
        "layer": "mixed4c",
        "index": 447,
        "ref": "inceptionv1/4c:447",
        "short_ref": "4c:447",
        "url": "http://testserver/models/inceptionv1/mixed4c/447/",
        "api_url": "http://testserver/api/v1/neurons/inceptionv1/mixed4c/447/",
    }


def test_missing_things_in_the_api_are_404s_that_say_which_part(
    client: Client, inceptionv1: Model
) -> None:
    cases = {
        "/api/v1/models/vgg99/": "unknown model 'vgg99'",
        "/api/v1/models/vgg99/layers/": "unknown model 'vgg99'",
        "/api/v1/models/inceptionv1/layers/9z/neurons/": "unknown layer '9z'",
        "/api/v1/neurons/inceptionv1/mixed4c/600/": "index 600 is out of range",
    }
    for url, message in cases.items():
        response = client.get(url)
        assert response.status_code == 404, url
        assert message in response.json()["error"]["message"]


def test_the_openapi_schema_and_docs_are_served(client: Client, db: None) -> None:
    schema = client.get("/api/schema/?format=json").json()
    assert "/api/v1/neurons/{model}/{layer}/{index}/" in schema["paths"]
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    assert b"swagger-ui" in docs.content
