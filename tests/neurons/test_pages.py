from __future__ import annotations

import pytest
from django.test import Client

from neurons.models import Model


def test_the_model_list_shows_every_registered_model(
    client: Client, inceptionv1: Model, mobilenet: Model
) -> None:
    response = client.get("/models/")
    assert response.status_code == 200
    assert b"InceptionV1" in response.content and b"MobileNetV2" in response.content
    assert b"5,804" in response.content


def test_home_sends_newcomers_to_the_models(client: Client, inceptionv1: Model) -> None:
    page = client.get("/").content.decode()  # the landing page: what happened, and models
    assert 'href="/models/"' in page and 'href="/models/inceptionv1/"' in page


def test_a_model_page_lists_its_layers_with_channel_counts(
    client: Client, inceptionv1: Model
) -> None:
    response = client.get("/models/inceptionv1/")
    assert response.status_code == 200
    assert [row.layer for row in response.context["rows"]][-1] == "mixed5b"
    assert b'href="/models/inceptionv1/mixed4c/"' in response.content
    assert b'<td class="num">1024</td>' in response.content
    assert b'<td class="num">0/1024</td>' in response.content  # coverage: nothing yet
    assert b"Weights are not installed here" in response.content


def test_a_layer_page_links_every_neuron(client: Client, inceptionv1: Model) -> None:
    # 256 tiles a page: mixed4c's 512 channels on two.
    first, second = (client.get("/models/inceptionv1/mixed4c/", {"page": n}) for n in (1, 2))
    assert first.status_code == second.status_code == 200
    for index, response in ((0, first), (255, first), (256, second), (447, second), (511, second)):
        assert f'href="/models/inceptionv1/mixed4c/{index}/"'.encode() in response.content
    for response in (first, second):
        assert b"/models/inceptionv1/mixed4c/512/" not in response.content


def test_a_neuron_page_shows_its_reference_and_neighbours(
    client: Client, inceptionv1: Model
) -> None:
    response = client.get("/models/inceptionv1/mixed4c/447/")
    assert response.status_code == 200
    content = response.content.decode()
    assert "4c:447" in content and "inceptionv1/4c:447" in content
    assert 'href="/models/inceptionv1/mixed4c/446/" rel="prev"' in content
    assert 'href="/models/inceptionv1/mixed4c/448/" rel="next"' in content
    assert 'id="visualizations"' in content and 'id="claims"' in content


def test_the_first_and_last_neurons_have_one_neighbour(client: Client, mobilenet: Model) -> None:
    first = client.get("/models/mobilenet_v2/features_1/0/").content.decode()
    last = client.get("/models/mobilenet_v2/features_1/15/").content.decode()
    assert 'rel="prev"' not in first and 'rel="next"' in first
    assert 'rel="prev"' in last and 'rel="next"' not in last


@pytest.mark.parametrize(
    ("url", "target"),
    [
        ("/n/inceptionv1/4c:447", "/models/inceptionv1/mixed4c/447/"),
        ("/n/inceptionv1/mixed4c:447", "/models/inceptionv1/mixed4c/447/"),
        ("/n/?q=inceptionv1/4c:447", "/models/inceptionv1/mixed4c/447/"),
        ("/n/?q=4c:447&model=inceptionv1", "/models/inceptionv1/mixed4c/447/"),
        ("/models/inceptionv1/mixed4c_0/447", "/models/inceptionv1/mixed4c/447/"),
        ("/models/inceptionv1/mixed4c_0/447/", "/models/inceptionv1/mixed4c/447/"),
        ("/models/inceptionv1/4c/447/", "/models/inceptionv1/mixed4c/447/"),
        ("/models/inceptionv1/4c/", "/models/inceptionv1/mixed4c/"),
        ("/models/inceptionv1/mixed4c/0447/", "/models/inceptionv1/mixed4c/447/"),
    ],
)
def test_short_and_openai_microscope_links_land_on_the_canonical_page(
    client: Client, inceptionv1: Model, url: str, target: str
) -> None:
    response = client.get(url, follow=True)
    assert response.redirect_chain[-1][0] == target
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("/models/vgg99/", "unknown model &#x27;vgg99&#x27;"),
        ("/models/inceptionv1/mixed9z/", "unknown layer &#x27;mixed9z&#x27; in inceptionv1"),
        ("/models/inceptionv1/mixed9z/1/", "unknown layer &#x27;mixed9z&#x27;"),
        ("/models/inceptionv1/mixed4c/512/", "index 512 is out of range"),
        ("/models/inceptionv1/mixed4c_0/9999", "index 9999 is out of range"),
        ("/n/inceptionv1/4c:999", "which has 512 channels"),
        ("/n/nonsense", "is not a neuron reference"),
        ("/n/?q=4c:447", "names no model"),
    ],
)
def test_a_missing_part_is_a_404_that_says_which_part(
    client: Client, inceptionv1: Model, url: str, message: str
) -> None:
    response = client.get(url)
    assert response.status_code == 404
    assert message in response.content.decode()


def test_a_model_page_draws_its_architecture_from_the_module_graph(
    client: Client, mobilenet: Model, inceptionv1: Model
) -> None:
    page = client.get("/models/mobilenet_v2/").content.decode()
    svg = page.split('<svg class="model-map"')[1].split("</svg>")[0]
    assert svg.count('class="map-layer"') == 19
    # torchvision's use_res_connect blocks, found by running the network: f3, f5, f6, f8,
    # f9, f10, f12, f13, f15 and f16 add the layer below.
    assert svg.count('<path class="skip"') == 10
    assert "InvertedResidual · 56\N{MULTIPLICATION SIGN}56 · 24 ch · stride 2" in svg  # features_2
    assert "InvertedResidual · 56\N{MULTIPLICATION SIGN}56 · 24 ch · skip" in svg  # features_3
    assert 'href="/models/mobilenet_v2/features_10/"' in svg
    inception = client.get("/models/inceptionv1/").content.decode()
    assert "CatLayer, 4 branches · 14\N{MULTIPLICATION SIGN}14 · 512 ch" in inception  # mixed4c
    assert '<path class="skip"' not in inception
