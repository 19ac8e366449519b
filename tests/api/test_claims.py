from __future__ import annotations

from collections.abc import Callable

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from annotations.models import Claim
from neurons.models import Model

ClientFor = Callable[[User], APIClient]

FEATURE = {
    "target": "inceptionv1/4c:447",
    "kind": "feature",
    "label": "car detector",
    "argument": "Fires on cars.",
}
CIRCUIT = {
    "target": "inceptionv1/mixed4c:447",
    "kind": "circuit",
    "label": "cars from windows and wheels",
    "expression": "4c:447 = 0.8*4b:373 + 4b:237",
    "argument": "Strong weights from window and wheel detectors.",
}


@pytest.fixture
def as_alice(client_for: ClientFor, alice: User, inceptionv1: Model) -> APIClient:
    return client_for(alice)


@pytest.fixture
def as_bob(client_for: ClientFor, bob: User, inceptionv1: Model) -> APIClient:
    return client_for(bob)


def post_claim(client: APIClient, body: dict) -> dict:
    response = client.post("/api/v1/claims/", body, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def test_a_claim_is_created_with_a_token_and_read_by_anyone(
    as_alice: APIClient, api: APIClient
) -> None:
    response = as_alice.post("/api/v1/claims/", CIRCUIT, format="json")
    assert response.status_code == 201
    created = response.json()
    assert response["Location"].endswith(f"/api/v1/claims/{created['id']}/")
    assert response["ETag"] == created["etag"] == f'"claim-{created["id"]}-r1"'
    assert created["target"] == "inceptionv1/4c:447"
    assert created["author"] == "alice" and created["status"] == "proposed"
    assert created["expression"] == "4c:447 = 0.8*4b:373 + 4b:237"
    assert created["terms"] == [
        {"ref": "inceptionv1/4c:447", "role": "target", "coefficient": 1.0},
        {"ref": "inceptionv1/4b:373", "role": "component", "coefficient": 0.8},
        {"ref": "inceptionv1/4b:237", "role": "component", "coefficient": 1.0},
    ]
    read = api.get(f"/api/v1/claims/{created['id']}/")
    assert read.status_code == 200 and read.json() == created
    assert read["ETag"] == created["etag"]


def test_anonymous_clients_cannot_write(api: APIClient, inceptionv1: Model) -> None:
    response = api.post("/api/v1/claims/", FEATURE, format="json")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"
    assert not Claim.objects.exists()


def test_a_session_needs_csrf_to_write(alice: User, inceptionv1: Model) -> None:
    browser = APIClient(enforce_csrf_checks=True)
    browser.force_login(alice)
    refused = browser.post("/api/v1/claims/", FEATURE, format="json")
    assert refused.status_code == 403
    assert "CSRF" in refused.json()["error"]["message"]
    page = browser.get("/account/tokens/")
    token = page.cookies["csrftoken"].value
    accepted = browser.post("/api/v1/claims/", FEATURE, format="json", HTTP_X_CSRFTOKEN=token)
    assert accepted.status_code == 201


def test_bad_input_is_a_400_naming_the_field(as_alice: APIClient) -> None:
    cases = [
        ({**FEATURE, "target": "inceptionv1/9z:1"}, "target", "unknown layer '9z'"),
        ({**FEATURE, "target": "4c:447"}, "target", "names no model"),
        ({**FEATURE, "label": "  "}, "label", "a label is required"),
        ({**FEATURE, "kind": "vibe"}, "kind", "not a valid choice"),
        ({**CIRCUIT, "expression": "4c:447 = 4d:1"}, "expression", "not below"),
        ({**FEATURE, "expression": "4c:447 = 4b:1"}, "expression", "feature claim"),
        ({k: v for k, v in FEATURE.items() if k != "argument"}, "argument", "required"),
    ]
    for body, field, message in cases:
        response = as_alice.post("/api/v1/claims/", body, format="json")
        assert response.status_code == 400, (body, response.json())
        error = response.json()["error"]
        assert error["code"] == "invalid"
        assert message in " ".join(error["fields"][field]), (field, error)
    assert not Claim.objects.exists()


def test_malformed_json_is_a_400_in_the_error_shape(as_alice: APIClient) -> None:
    response = as_alice.post("/api/v1/claims/", "{nope", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "parse_error"


def test_an_edit_needs_the_current_etag(as_alice: APIClient) -> None:
    claim = post_claim(as_alice, FEATURE)
    url = f"/api/v1/claims/{claim['id']}/"
    edit = {"label": "car detector", "argument": "Fires on cars and buses."}

    missing = as_alice.patch(url, edit, format="json")
    assert missing.status_code == 428
    assert missing.json()["error"]["code"] == "precondition_required"

    wildcard = as_alice.patch(url, edit, format="json", HTTP_IF_MATCH="*")
    assert wildcard.status_code == 428

    first = as_alice.patch(url, edit, format="json", HTTP_IF_MATCH=claim["etag"])
    assert first.status_code == 200
    assert first.json()["revision"] == 2 and first["ETag"] == f'"claim-{claim["id"]}-r2"'
    assert first.json()["argument"] == "Fires on cars and buses."

    stale = as_alice.patch(
        url, {"argument": "Only cars."}, format="json", HTTP_IF_MATCH=claim["etag"]
    )
    assert stale.status_code == 412
    error = stale.json()["error"]
    assert error["code"] == "precondition_failed" and "revision 2" in error["message"]
    assert Claim.objects.get().revision_number == 2  # nothing overwritten
    long = as_alice.patch(url, edit, format="json", HTTP_IF_MATCH='"x' + "y" * 12_000 + '"')
    assert long.status_code == 412 and len(long.json()["error"]["message"]) < 300

    weak = as_alice.put(
        url,
        {"label": "vehicle detector", "argument": "Cars, buses."},
        format="json",
        HTTP_IF_MATCH=f"W/{first['ETag']}",
    )
    assert weak.status_code == 200 and weak.json()["label"] == "vehicle detector"


def test_the_history_of_a_claim_is_listed_with_terms(as_alice: APIClient, api: APIClient) -> None:
    claim = post_claim(as_alice, CIRCUIT)
    url = f"/api/v1/claims/{claim['id']}/"
    as_alice.patch(
        url,
        {"expression": "4c:447 = 0.5*4b:373 - 4b:12"},
        format="json",
        HTTP_IF_MATCH=claim["etag"],
    )
    revisions = api.get(url + "revisions/").json()
    assert [r["number"] for r in revisions] == [1, 2]
    assert revisions[1]["based_on"] == 1 and revisions[1]["author"] == "alice"
    assert [t["ref"] for t in revisions[1]["terms"]] == [
        "inceptionv1/4c:447",
        "inceptionv1/4b:373",
        "inceptionv1/4b:12",
    ]
    assert api.get(url + "revisions/1/").json()["expression"] == CIRCUIT["expression"]
    missing = api.get(url + "revisions/3/")
    assert missing.status_code == 404 and "no revision 3" in missing.json()["error"]["message"]


def test_the_token_of_another_user_cannot_edit_or_retract(
    as_alice: APIClient, as_bob: APIClient
) -> None:
    claim = post_claim(as_alice, FEATURE)
    url = f"/api/v1/claims/{claim['id']}/"
    edit = as_bob.patch(url, {"label": "mine now"}, format="json", HTTP_IF_MATCH=claim["etag"])
    assert edit.status_code == 403
    assert edit.json()["error"]["code"] == "permission_denied"
    # Whose claim it is comes before which revision: no If-Match is still a 403, not a 428.
    for method in (as_bob.patch, as_bob.put):
        blind = method(url, {"label": "mine now"}, format="json")
        assert blind.status_code == 403 and blind.json()["error"]["code"] == "permission_denied"
    assert as_bob.post(url + "retract/").status_code == 403
    assert Claim.objects.get().label == "car detector" and not Claim.objects.get().retracted


def test_a_claim_is_retracted_by_its_author(as_alice: APIClient, as_bob: APIClient) -> None:
    claim = post_claim(as_alice, FEATURE)
    url = f"/api/v1/claims/{claim['id']}/"
    retracted = as_alice.post(url + "retract/")
    assert retracted.status_code == 200
    assert retracted.json()["status"] == "retracted" and retracted.json()["retracted_at"]
    review = as_bob.post(url + "reviews/", {"verdict": "support", "reason": "yes"}, format="json")
    assert review.status_code == 400 and "retracted" in review.json()["error"]["message"]


def test_reviews_change_the_status_and_keep_history(
    as_alice: APIClient, as_bob: APIClient, api: APIClient
) -> None:
    claim = post_claim(as_alice, FEATURE)
    url = f"/api/v1/claims/{claim['id']}/"
    own = as_alice.post(url + "reviews/", {"verdict": "support", "reason": "mine"}, format="json")
    assert own.status_code == 403

    first = as_bob.post(
        url + "reviews/", {"verdict": "dispute", "reason": "Trucks too.", "revision": 1}, "json"
    )
    assert first.status_code == 201
    assert first.json()["reviewer"] == "bob" and first.json()["revision"] == 1
    assert api.get(url).json()["status"] == "disputed"
    as_bob.post(url + "reviews/", {"verdict": "support", "reason": "Convinced."}, format="json")
    assert api.get(url).json()["status"] == "supported"
    reviews = api.get(url + "reviews/").json()["results"]
    assert [(r["verdict"], r["current"]) for r in reviews] == [
        ("support", True),
        ("dispute", False),
    ]


def test_a_review_of_an_outdated_revision_is_a_409(as_alice: APIClient, as_bob: APIClient) -> None:
    claim = post_claim(as_alice, FEATURE)
    url = f"/api/v1/claims/{claim['id']}/"
    as_alice.patch(url, {"argument": "Revised."}, format="json", HTTP_IF_MATCH=claim["etag"])
    stale = as_bob.post(
        url + "reviews/", {"verdict": "support", "reason": "ok", "revision": 1}, format="json"
    )
    assert stale.status_code == 409
    assert stale.json()["error"]["code"] == "conflict"


def test_comments_are_posted_and_listed_oldest_first(
    as_alice: APIClient, as_bob: APIClient, api: APIClient
) -> None:
    claim = post_claim(as_alice, FEATURE)
    url = f"/api/v1/claims/{claim['id']}/comments/"
    assert as_bob.post(url, {"body": "Trucks?"}, format="json").status_code == 201
    assert as_alice.post(url, {"body": "No."}, format="json").status_code == 201
    assert as_alice.post(url, {"body": ""}, format="json").status_code == 400
    comments = api.get(url).json()["results"]
    assert [(c["author"], c["body"]) for c in comments] == [("bob", "Trucks?"), ("alice", "No.")]


def test_claims_are_filtered_by_neuron_as_target_or_component(
    as_alice: APIClient, as_bob: APIClient, api: APIClient
) -> None:
    feature = post_claim(as_alice, FEATURE)
    circuit = post_claim(as_bob, CIRCUIT)
    other = post_claim(as_bob, {**FEATURE, "target": "inceptionv1/4b:373", "label": "glass panes"})

    def ids(query: str) -> list[int]:
        response = api.get(f"/api/v1/claims/?{query}")
        assert response.status_code == 200, response.json()
        return [c["id"] for c in response.json()["results"]]

    assert ids("") == [other["id"], circuit["id"], feature["id"]]
    assert ids("ordering=created") == [feature["id"], circuit["id"], other["id"]]
    assert ids("neuron=inceptionv1/4c:447") == [circuit["id"], feature["id"]]
    assert ids("neuron=4b:373&model=inceptionv1") == [other["id"], circuit["id"]]
    assert ids("author=alice") == [feature["id"]]
    assert ids("kind=circuit") == [circuit["id"]]
    assert ids("model=inceptionv1&layer=4b") == [other["id"]]
    assert ids("model=inceptionv1&layer=mixed4c&status=proposed") == [
        circuit["id"],
        feature["id"],
    ]
    assert ids("q=panes") == [other["id"]]
    assert ids("status=supported") == []


def test_bad_filters_are_400s_naming_the_parameter(api: APIClient, inceptionv1: Model) -> None:
    cases = {
        "neuron=inceptionv1/4c:9999": "neuron",
        "neuron=4c:1": "neuron",
        "model=vgg99": "model",
        "model=inceptionv1&layer=9z": "layer",
        "layer=4c": "layer",
        "author=nobody": "author",
        "status=great": "status",
        "ordering=id": "ordering",
        "author=%00": "author",
        # A % in the text was once a 500: django-filter %-formats every message.
        "author=%25s": "author",
        "author=50%25": "author",
        "model=%25d": "model",
        "neuron=%25s": "neuron",
        "model=inceptionv1&layer=%25s": "layer",
        "page_size=true": "page_size",
        "page_size=0": "page_size",
        "page_size=501": "page_size",
    }
    for query, field in cases.items():
        response = api.get(f"/api/v1/claims/?{query}")
        assert response.status_code == 400, query
        assert field in response.json()["error"]["fields"], (query, response.json())
    said = api.get("/api/v1/claims/?author=%25s").json()["error"]["message"]
    assert said == "author: nobody is called '%s' here"


def test_the_claim_list_pages_with_a_cursor(as_alice: APIClient, api: APIClient) -> None:
    made = [post_claim(as_alice, {**FEATURE, "label": f"claim {i}"})["id"] for i in range(5)]
    seen: list[int] = []
    url = "/api/v1/claims/?page_size=2"
    while url:
        body = api.get(url).json()
        seen += [c["id"] for c in body["results"]]
        url = body["next"]
    assert seen == made[::-1]
    bad = api.get("/api/v1/claims/?cursor=garbage")
    assert bad.status_code == 400 and "cursor" in bad.json()["error"]["fields"]


def test_hidden_claims_are_not_shown_to_others(as_alice: APIClient, api: APIClient) -> None:
    claim = post_claim(as_alice, FEATURE)
    Claim.objects.filter(pk=claim["id"]).update(hidden=True)
    assert api.get(f"/api/v1/claims/{claim['id']}/").status_code == 404
    assert api.get("/api/v1/claims/").json()["results"] == []


def test_the_claim_list_costs_the_same_queries_for_many_claims(
    as_alice: APIClient,
    as_bob: APIClient,
    api: APIClient,
    django_assert_max_num_queries: Callable,
) -> None:
    post_claim(as_alice, CIRCUIT)
    with django_assert_max_num_queries(2):  # the claims, then their terms
        assert len(api.get("/api/v1/claims/").json()["results"]) == 1
    for i in range(12):
        post_claim(as_bob if i % 2 else as_alice, {**CIRCUIT, "label": f"claim {i}"})
    with django_assert_max_num_queries(2):
        assert len(api.get("/api/v1/claims/").json()["results"]) == 13
    with django_assert_max_num_queries(6):
        body = api.get("/api/v1/claims/?neuron=inceptionv1/4b:373&author=bob").json()
        assert len(body["results"]) == 6


def test_a_coefficient_too_large_to_store_is_refused_and_nothing_breaks(
    as_alice: APIClient, api: APIClient, staff: User, client_for: ClientFor
) -> None:
    body = {**CIRCUIT, "expression": "4c:447 = " + "9" * 309 + "*4b:373"}
    response = as_alice.post("/api/v1/claims/", body, format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert "expression" in error["fields"] and "is not allowed" in error["message"]
    assert not Claim.objects.exists()
    post_claim(as_alice, {**CIRCUIT, "expression": "4c:447 = 0.00005*4b:373 + 4b:237"})
    for client in (api, client_for(staff)):
        assert client.get("/api/v1/claims/").status_code == 200
        assert client.get("/api/v1/export/?model=inceptionv1").status_code == 200
