"""The header's search box, and labels wherever neurons are shown."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client
from rest_framework.test import APIClient

from annotations.models import Claim
from annotations.services import claim_create, claim_review
from neurons.models import Layer, Model, Neuron
from neurons.references import resolve

pytestmark = pytest.mark.django_db


def claim(author: User, ref: str, label: str, argument: str = "An argument.") -> Claim:
    return claim_create(
        author=author, target=resolve(ref), kind="feature", label=label, argument=argument
    )


@pytest.mark.parametrize(
    ("query", "target"),
    [
        ({"q": "f10:3", "model": "mobilenet_v2"}, "/models/mobilenet_v2/features_10/3/"),
        ({"q": " mobilenet_v2/f10:3 "}, "/models/mobilenet_v2/features_10/3/"),
        ({"q": "mobilenet_v2/features_10:3"}, "/models/mobilenet_v2/features_10/3/"),
        ({"q": "mixed4c:447"}, "/models/inceptionv1/mixed4c/447/"),  # one model has mixed4c
        ({"q": "4c:447", "model": "inceptionv1"}, "/models/inceptionv1/mixed4c/447/"),
        ({"q": "mixed4c_0:447"}, "/models/inceptionv1/mixed4c/447/"),  # OpenAI Microscope's
    ],
)
def test_a_reference_in_any_form_goes_to_its_neuron(
    client: Client, mobilenet: Model, inceptionv1: Model, query: dict, target: str
) -> None:
    response = client.get("/search/", query)
    assert response.status_code == 302 and response["Location"] == target


def test_a_reference_that_names_no_neuron_says_why_on_a_page_not_a_404(
    client: Client, mobilenet: Model
) -> None:
    for query, reason in (
        ({"q": "f10:999", "model": "mobilenet_v2"}, "index 999 is out of range"),
        ({"q": "f99:3", "model": "mobilenet_v2"}, "unknown layer &#x27;f99&#x27; in mobilenet_v2"),
        ({"q": "nomodel/f10:3"}, "unknown model &#x27;nomodel&#x27;"),
        ({"q": "zz9:1"}, "zz9:1 names no neuron of any model"),
    ):
        response = client.get("/search/", query)
        assert response.status_code == 200, query
        assert reason in response.content.decode(), (query, response.content.decode()[-2000:])


def test_a_reference_two_models_share_asks_which(client: Client, mobilenet: Model) -> None:
    toy = Model.objects.create(slug="toy", title="Toy")
    layer = Layer.objects.create(
        model=toy, name="features_10", alias="f10", position=0, channels=4, height=1, width=1
    )
    Neuron.objects.create(layer=layer, index=3)
    page = client.get("/search/", {"q": "f10:3"}).content.decode()
    assert 'id="candidates"' in page
    assert 'href="/models/mobilenet_v2/features_10/3/"' in page
    assert 'href="/models/toy/features_10/3/"' in page
    # On a page of one of them, the box knows which.
    response = client.get("/search/", {"q": "f10:3", "model": "toy"})
    assert response["Location"] == "/models/toy/features_10/3/"


def test_words_search_claims_on_every_model_grouped_by_neuron(
    client: Client, mobilenet: Model, inceptionv1: Model, alice: User, bob: User, staff: User
) -> None:
    car = claim(alice, "inceptionv1/4c:447", "car detector", "Fires on cars, wheels below.")
    claim(bob, "inceptionv1/4c:447", "wheel and car-body detector")
    wheel = claim(bob, "mobilenet_v2/f10:3", "wheel detector", "Round dark shapes: cars' wheels.")
    claim(alice, "mobilenet_v2/f10:4", "dog snout")
    hidden = claim(alice, "mobilenet_v2/f10:5", "car headlight")
    Claim.objects.filter(pk=hidden.pk).update(hidden=True)

    page = client.get("/search/", {"q": "car"}).content.decode()
    assert "2 neurons with claims matching “car”" in page
    assert page.count('class="ref">inceptionv1/4c:447</a>') == 1  # one group, two claims
    assert f'href="/claims/{car.pk}/">car detector</a>' in page
    assert "wheel and car-body detector" in page
    assert f'href="/claims/{wheel.pk}/">wheel detector</a>' in page  # its argument matches
    assert "dog snout" not in page and "car headlight" not in page  # hidden: staff only
    assert "not rendered yet" in page  # no picture yet, and said so

    nothing = client.get("/search/", {"q": "zebra crossing"}).content.decode()
    assert "0 neurons" in nothing and "No claim matches" in nothing
    hostile = client.get("/search/", {"q": "<script>alert(1)</script>" + "x" * 150})
    assert hostile.status_code == 200 and b"<script>alert" not in hostile.content
    too_long = client.get("/search/", {"q": "<script>alert(1)</script>" + "x" * 500})
    assert too_long.status_code == 400 and b"<script>alert" not in too_long.content
    assert b"q: at most 200 characters (525 given)" in too_long.content


def test_the_header_box_knows_the_model_of_the_page(client: Client, mobilenet: Model) -> None:
    page = client.get("/models/mobilenet_v2/features_10/").content.decode()
    assert 'action="/search/"' in page
    assert '<input type="hidden" name="model" value="mobilenet_v2">' in page
    landing = client.get("/models/").content.decode()
    assert 'action="/search/"' in landing and 'name="model"' not in landing


def test_a_neuron_s_label_is_beside_its_title_on_its_tile_and_in_the_api(
    client: Client,
    api: APIClient,
    mobilenet: Model,
    alice: User,
    bob: User,
    staff: User,
) -> None:
    first = claim(alice, "mobilenet_v2/f10:3", "curve detector")
    newer = claim(bob, "mobilenet_v2/f10:3", "circle detector")
    neuron_url, layer_url = (
        "/models/mobilenet_v2/features_10/3/",
        "/models/mobilenet_v2/features_10/",
    )
    api_url = "/api/v1/neurons/mobilenet_v2/features_10/3/"

    # Without a supported claim: the newest proposed one, said to be proposed.
    page = client.get(neuron_url).content.decode()
    assert f'id="neuron-label" href="/claims/{newer.pk}/">circle detector</a>' in page
    assert '<span class="status status-proposed">proposed</span>' in page
    grid = client.get(layer_url).content.decode()
    assert '<span class="tile-label status-proposed">circle detector</span>' in grid
    assert grid.count('class="tile-label') == 1
    body = api.get(api_url).json()
    assert body["label"] == {
        "text": "circle detector",
        "status": "proposed",
        "url": f"http://testserver/claims/{newer.pk}/",
    }

    # A supported claim wins over a newer proposed one.
    claim_review(claim=first, reviewer=staff, verdict="support", reason="Curves in every image.")
    first.refresh_from_db()
    assert first.status == "supported"
    page = client.get(neuron_url).content.decode()
    assert f'id="neuron-label" href="/claims/{first.pk}/">curve detector</a>' in page
    assert api.get(api_url).json()["label"]["status"] == "supported"

    # Hidden and retracted claims label nothing.
    Claim.objects.filter(pk__in=[first.pk, newer.pk]).update(hidden=True)
    assert 'id="neuron-label"' not in client.get(neuron_url).content.decode()
    assert api.get(api_url).json()["label"] is None


def test_a_reference_of_another_model_typed_on_a_model_s_page_still_goes_there(
    client: Client, mobilenet: Model, inceptionv1: Model
) -> None:
    response = client.get("/search/", {"q": "mixed4c:447", "model": "mobilenet_v2"})
    assert response["Location"] == "/models/inceptionv1/mixed4c/447/"
    # Written with its model, it is that model's or nothing.
    page = client.get("/search/", {"q": "mobilenet_v2/mixed4c:447", "model": "mobilenet_v2"})
    assert page.status_code == 200 and b"unknown layer" in page.content
    assert client.get("/search/", {"q": "car\x00"}).status_code == 400  # as everywhere
