"""What happened: the landing page, each model's Atom feed of claims, and a neuron's
citation snippet."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from django.contrib.auth.models import User
from django.test import Client

from annotations.models import Claim
from annotations.services import claim_create, claim_review
from jobs import storage
from jobs.models import ArtifactKind
from neurons.models import Model
from neurons.references import resolve
from tests.jobs.test_render_pages import png

pytestmark = pytest.mark.django_db
ATOM = "{http://www.w3.org/2005/Atom}"


def claim(author: User, ref: str, label: str) -> Claim:
    return claim_create(
        author=author, target=resolve(ref), kind="feature", label=label, argument="Because."
    )


def test_the_landing_page_shows_recent_claims_reviews_disputes_and_coverage(
    client: Client, mobilenet: Model, inceptionv1: Model, alice: User, bob: User
) -> None:
    curve = claim(alice, "mobilenet_v2/f10:3", "curve detector")
    dog = claim(alice, "inceptionv1/4c:447", "dog detector")
    secret = claim(bob, "mobilenet_v2/f10:4", "secret label")
    Claim.objects.filter(pk=secret.pk).update(hidden=True)
    claim_review(claim=dog, reviewer=bob, verdict="dispute", reason="It fires on cars.")
    page = client.get("/").content.decode()
    assert client.get("/").status_code == 200
    claims, reviews, disputed = (
        page.split(f'id="home-{name}"')[1].split("</section>")[0]
        for name in ("claims", "reviews", "disputed")
    )
    assert "curve detector" in claims and "dog detector" in claims
    assert claims.index("dog detector") < claims.index("curve detector")  # newest first
    assert "secret label" not in page
    assert "dispute of" in reviews and f'href="/claims/{dog.pk}/"' in reviews
    assert "dog detector" in disputed and "curve detector" not in disputed
    assert "1 dispute, 0 supports" in disputed
    # Coverage per model, with its feed.
    assert 'href="/models/mobilenet_v2/claims.atom"' in page
    assert '<td class="num">2,816</td>' in page  # MobileNetV2's channels
    assert curve.pk


def test_each_model_has_an_atom_feed_of_its_new_claims(
    client: Client, mobilenet: Model, inceptionv1: Model, alice: User
) -> None:
    claim(alice, "mobilenet_v2/f10:3", "curve detector")
    claim(alice, "mobilenet_v2/f10:5", "<b>bold</b> & co")
    claim(alice, "inceptionv1/4c:447", "car detector")
    response = client.get("/models/mobilenet_v2/claims.atom")
    assert response.status_code == 200 and response["Content-Type"].startswith(
        "application/atom+xml"
    )
    feed = ET.fromstring(response.content)
    titles = [entry.find(f"{ATOM}title").text for entry in feed.iter(f"{ATOM}entry")]
    assert titles == ["mobilenet_v2/f10:5: <b>bold</b> & co", "mobilenet_v2/f10:3: curve detector"]
    links = [entry.find(f"{ATOM}link").get("href") for entry in feed.iter(f"{ATOM}entry")]
    assert all(link.startswith("http://testserver/claims/") for link in links)
    assert client.get("/models/nomodel/claims.atom").status_code == 404


def test_a_neuron_page_offers_a_citation_and_an_embed(client: Client, mobilenet: Model) -> None:
    neuron = resolve("mobilenet_v2/f10:3")
    page = client.get(neuron.get_absolute_url()).content.decode()
    url = "http://testserver/models/mobilenet_v2/features_10/3/"
    assert f"mobilenet_v2/f10:3 (MobileNetV2, features_10 channel 3), Microscope: {url}" in page
    assert "http://testserver/n/mobilenet_v2/f10:3" in page
    assert f"[mobilenet_v2/f10:3]({url})" in page  # nothing rendered: a link without a picture
    identity = {"kind": "featurevis", "channel": 3}
    artifact = storage.artifact_create(
        kind=ArtifactKind.FEATUREVIS, neuron=neuron, identity=identity, images=[png()]
    )
    page = client.get(neuron.get_absolute_url()).content.decode()
    image = f"http://testserver{artifact.urls[0]}"
    assert f"[![mobilenet_v2/f10:3]({image})]({url})" in page
    assert f"&lt;img src=&quot;{image}&quot; alt=&quot;mobilenet_v2/f10:3&quot;" in page
    assert client.get("/n/mobilenet_v2/f10:3").status_code == 302
