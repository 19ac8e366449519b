from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.utils import timezone
from pytest_django.fixtures import Settings
from rest_framework.test import APIClient

from annotations import services
from annotations.models import Claim, ClaimRevision, ClaimTerm, Comment, Review
from api.exchange import FORMAT, VERSION, ExportDoc, claims_import
from neurons.models import Model, Neuron
from neurons.references import resolve
from people.services import profile_update


def neuron(ref: str) -> Neuron:
    return resolve(ref)


@pytest.fixture
def history(inceptionv1: Model, alice: User, bob: User, staff: User) -> list[Claim]:
    """Claims with edits, reviews that changed, a hidden review, comments and a retraction."""
    profile_update(user=alice, name="Alice Liddell", institution="Oxford")
    carol = User.objects.create_user("carol")
    circuit = services.claim_create(
        author=alice,
        target=neuron("inceptionv1/4c:447"),
        kind="circuit",
        label="cars",
        argument="windows and wheels",
        expression="4c:447 = 0.8*4b:373 + 4b:237",
    )
    services.claim_review(claim=circuit, reviewer=bob, verdict="dispute", reason="trucks?")
    services.claim_update(
        claim=circuit,
        author=alice,
        based_on=1,
        label="cars",
        argument="windows, wheels; not trucks",
        expression="4c:447 = 0.5*4b:373 + 4b:237 - 4b:12",
    )
    services.claim_review(claim=circuit, reviewer=bob, verdict="support", reason="ok now")
    hidden = services.claim_review(claim=circuit, reviewer=carol, verdict="dispute", reason="spam")
    services.content_hide(moderator=staff, content=hidden)
    services.comment_create(claim=circuit, author=carol, body="Nice.")
    feature = services.claim_create(
        author=bob, target=neuron("inceptionv1/5a:1"), kind="feature", label="dogs", argument="fur"
    )
    services.claim_retract(claim=feature, author=bob)
    services.claim_create(
        author=bob, target=neuron("inceptionv1/3a:0"), kind="feature", label="x", argument="y"
    )
    return list(Claim.objects.order_by("id"))


def wipe() -> None:
    """Forget every claim and person: what another instance looks like."""
    Claim.objects.update(current_revision=None)
    for model in (Review, Comment, ClaimTerm, ClaimRevision, Claim):
        model.objects.all().delete()
    User.objects.all().delete()


def elsewhere(client_for: Callable[[User], APIClient], curator: str) -> APIClient:
    """Another instance (everything forgotten), and the API client of its new curator."""
    wipe()
    return client_for(User.objects.create_user(curator, is_staff=True))


def comparable(document: dict) -> dict:
    document = copy.deepcopy(document)
    document.pop("exported")
    document.pop("source")
    document.pop("signature")  # of the document as it was exported, at its time
    return document


def test_an_export_carries_portable_references_and_usernames(
    history: list[Claim], api: APIClient
) -> None:
    response = api.get("/api/v1/export/?model=inceptionv1")
    assert response.status_code == 200
    document = response.json()
    assert document["format"] == "microscope-claims" and document["model"] == "inceptionv1"
    circuit = document["claims"][0]
    assert circuit["uid"] == str(history[0].uid)
    assert circuit["target"] == "inceptionv1/4c:447" and circuit["author"] == "alice"
    assert [r["number"] for r in circuit["revisions"]] == [1, 2]
    assert circuit["revisions"][1]["terms"][-1] == {
        "ref": "inceptionv1/4b:12",
        "role": "component",
        "coefficient": -1.0,
    }
    assert [
        (r["reviewer"], r["verdict"], r["revision"], r["current"]) for r in circuit["reviews"]
    ] == [
        ("bob", "dispute", 1, False),
        ("bob", "support", 2, True),
    ]  # carol's hidden review is for staff only
    assert document["claims"][1]["retracted_at"] is not None
    assert {"username": "alice", "name": "Alice Liddell", "institution": "Oxford"} in document[
        "people"
    ]
    assert "id" not in circuit and "pk" not in str(circuit.keys())


def test_an_export_and_import_round_trip_and_a_second_import_adds_nothing(
    history: list[Claim], client_for: Callable[[User], APIClient], staff: User
) -> None:
    as_staff = client_for(staff)
    exported = as_staff.get("/api/v1/export/?model=inceptionv1").json()
    statuses = {str(c.uid): c.status for c in history}
    wipe()

    curator = User.objects.create_user("curator2", is_staff=True)
    as_curator = client_for(curator)
    report = as_curator.post("/api/v1/import/", exported, format="json")
    assert report.status_code == 200, report.json()
    assert report.json() == {
        "claims_created": 3,
        "claims_merged": 0,
        "claims_skipped": 0,
        "revisions": 4,
        "reviews": 3,
        "comments": 1,
        "flags": 0,
        "lists_created": 0,
        "list_entries": 0,
        "people_created": ["alice", "bob", "carol"],
        "ignored": [],
    }
    assert comparable(as_curator.get("/api/v1/export/?model=inceptionv1").json()) == comparable(
        exported
    )
    assert {str(c.uid): c.status for c in Claim.objects.all()} == statuses
    assert User.objects.get(username="alice").profile.institution == "Oxford"
    assert not User.objects.get(username="alice").has_usable_password()

    again = as_curator.post("/api/v1/import/", exported, format="json").json()
    assert again["claims_created"] == 0 and again["claims_skipped"] == 3
    assert (Claim.objects.count(), ClaimRevision.objects.count(), Review.objects.count()) == (
        3,
        4,
        3,
    )


def test_only_staff_import(
    history: list[Claim], client_for: Callable[[User], APIClient], bob: User, api: APIClient
) -> None:
    document = api.get("/api/v1/export/?model=inceptionv1").json()
    assert api.post("/api/v1/import/", document, format="json").status_code == 401
    assert client_for(bob).post("/api/v1/import/", document, format="json").status_code == 403


def test_a_bad_document_is_refused_whole_with_the_path_of_the_problem(
    history: list[Claim], client_for: Callable[[User], APIClient], staff: User
) -> None:
    as_staff = client_for(staff)
    document = as_staff.get("/api/v1/export/?model=inceptionv1").json()
    document["source"] = "https://lab-a.example/"  # another's: edited, it is no restore here
    wipe()
    curator = client_for(User.objects.create_user("curator2", is_staff=True))

    broken = copy.deepcopy(document)
    broken["claims"][2]["target"] = "inceptionv1/4c:9999"
    response = curator.post("/api/v1/import/", broken, format="json")
    assert response.status_code == 400
    assert "out of range" in response.json()["error"]["fields"]["claims.2.target"][0]

    broken = copy.deepcopy(document)
    broken["claims"][0]["revisions"][1]["expression"] = "4c:447 = 4d:1"
    response = curator.post("/api/v1/import/", broken, format="json")
    assert "claims.0.revisions.1.expression" in response.json()["error"]["fields"]

    broken = copy.deepcopy(document)
    broken["claims"][0]["reviews"][0]["revision"] = 7
    response = curator.post("/api/v1/import/", broken, format="json")
    assert "claims.0.reviews" in response.json()["error"]["fields"]

    response = curator.post("/api/v1/import/", {"format": "csv"}, format="json")
    assert response.status_code == 400 and "format" in response.json()["error"]["fields"]
    for version in ("1", 2, 1.0, True):  # the number 1 only
        response = curator.post("/api/v1/import/", document | {"version": version}, format="json")
        assert response.json()["error"]["fields"] == {
            "version": ["this instance reads version 1 of the format, a number"]
        }, version
    assert not Claim.objects.exists() and not User.objects.filter(username="alice").exists()


def test_an_export_of_an_unknown_model_is_a_400(api: APIClient, db: None) -> None:
    response = api.get("/api/v1/export/?model=vgg99")
    assert response.status_code == 400
    assert "unknown model" in response.json()["error"]["fields"]["model"][0]
    assert api.get("/api/v1/export/").status_code == 400


def test_the_export_costs_the_same_queries_for_many_claims(
    history: list[Claim], api: APIClient, bob: User, django_assert_max_num_queries: Callable
) -> None:
    with django_assert_max_num_queries(12):
        api.get("/api/v1/export/?model=inceptionv1")
    for i in range(10):
        claim = services.claim_create(
            author=bob,
            target=neuron(f"inceptionv1/4c:{i}"),
            kind="feature",
            label="x",
            argument="y",
        )
        services.comment_create(claim=claim, author=bob, body="more")
    with django_assert_max_num_queries(12):
        assert len(api.get("/api/v1/export/?model=inceptionv1").json()["claims"]) == 13


def test_a_newer_export_brings_later_revisions_reviews_and_comments_and_only_once(
    history: list[Claim],
    client_for: Callable[[User], APIClient],
    staff: User,
    alice: User,
    bob: User,
) -> None:
    as_staff = client_for(staff)
    older = as_staff.get("/api/v1/export/?model=inceptionv1").json()
    circuit = history[0]
    services.claim_update(
        claim=circuit, author=alice, based_on=2, label="cars", argument="third thoughts",
        expression="4c:447 = 0.5*4b:373 + 4b:237",
    )  # fmt: skip
    services.claim_review(claim=circuit, reviewer=bob, verdict="support", reason="still ok")
    services.comment_create(claim=circuit, author=bob, body="Later.")
    newer = as_staff.get("/api/v1/export/?model=inceptionv1").json()
    wipe()
    curator = client_for(User.objects.create_user("curator2", is_staff=True))
    assert curator.post("/api/v1/import/", older, format="json").status_code == 200

    report = curator.post("/api/v1/import/", newer, format="json").json()
    assert (report["claims_created"], report["claims_merged"], report["claims_skipped"]) == (
        0,
        1,
        2,
    )
    assert (report["revisions"], report["reviews"], report["comments"]) == (1, 1, 1)
    assert report["people_created"] == []
    assert comparable(curator.get("/api/v1/export/?model=inceptionv1").json()) == comparable(newer)

    again = curator.post("/api/v1/import/", newer, format="json").json()
    assert (again["claims_merged"], again["claims_skipped"], again["reviews"]) == (0, 3, 0)


def test_a_claim_edited_on_both_instances_is_refused_naming_the_revision(
    history: list[Claim], client_for: Callable[[User], APIClient], staff: User
) -> None:
    as_staff = client_for(staff)
    document = as_staff.get("/api/v1/export/?model=inceptionv1").json()
    document["claims"][0]["revisions"][1]["argument"] = "edited elsewhere"
    response = as_staff.post("/api/v1/import/", document, format="json")
    assert response.status_code == 400
    assert "claims.0.revisions.1" in response.json()["error"]["fields"]


def test_people_of_another_instance_never_become_the_local_account_of_that_name(
    history: list[Claim], client_for: Callable[[User], APIClient], staff: User
) -> None:
    as_staff = client_for(staff)
    document = as_staff.get("/api/v1/export/?model=inceptionv1").json()
    document["source"] = "https://lab-a.example/api/v1/export/"
    wipe()
    local_alice = User.objects.create_user("alice", password="pw-local-alice-1")
    curator = client_for(User.objects.create_user("curator2", is_staff=True))
    report = curator.post("/api/v1/import/", document, format="json").json()
    assert report["people_created"] == [
        "alice@lab-a.example", "bob@lab-a.example", "carol@lab-a.example"
    ]  # fmt: skip
    imported = User.objects.get(username="alice@lab-a.example")
    assert imported.profile.origin == "https://lab-a.example/"
    # The same instance spelt another way is the same instance: the same accounts.
    document["source"] = "HTTPS://Lab-A.example:443/"
    Claim.objects.update(current_revision=None)
    for model in (Review, Comment, ClaimTerm, ClaimRevision, Claim):
        model.objects.all().delete()
    assert curator.post("/api/v1/import/", document, format="json").json()["people_created"] == []
    assert imported.profile.origin_username == "alice" and imported.profile.institution == "Oxford"
    assert not Claim.objects.filter(author=local_alice).exists()
    assert Claim.objects.filter(author=imported).count() == 1

    # Exported again from here, they keep their origin, and come back to the same accounts.
    exported = curator.get("/api/v1/export/?model=inceptionv1").json()
    person = next(p for p in exported["people"] if p["username"] == "alice@lab-a.example")
    assert (person["origin"], person["origin_username"]) == ("https://lab-a.example/", "alice")
    Claim.objects.update(current_revision=None)
    for model in (Review, Comment, ClaimTerm, ClaimRevision, Claim):
        model.objects.all().delete()
    again = curator.post("/api/v1/import/", exported, format="json").json()
    assert again["people_created"] == [] and again["claims_created"] == 3


def test_a_claim_on_a_neuron_of_another_model_is_refused(
    history: list[Claim], client_for: Callable[[User], APIClient], staff: User, mobilenet: Model
) -> None:
    as_staff = client_for(staff)
    document = as_staff.get("/api/v1/export/?model=inceptionv1").json()
    document["claims"][2]["target"] = "mobilenet_v2/features_3:1"
    document["claims"][2]["uid"] = "2f1c8f0e-5d7b-4c0e-9a55-8f1f7f0b9c11"
    response = as_staff.post("/api/v1/import/", document, format="json")
    assert response.status_code == 400
    assert "not a neuron of inceptionv1" in response.json()["error"]["fields"]["claims.2.target"][0]


def test_a_review_its_hidden_successor_replaced_stays_replaced_when_imported(
    inceptionv1: Model, alice: User, bob: User, staff: User, api: APIClient
) -> None:
    claim = services.claim_create(
        author=alice, target=neuron("inceptionv1/4c:2"), kind="feature", label="a", argument="b"
    )
    for verdict in ("dispute", "support"):
        services.claim_review(claim=claim, reviewer=bob, verdict=verdict, reason=verdict)
    last = services.claim_review(claim=claim, reviewer=bob, verdict="dispute", reason="spam")
    services.content_hide(moderator=staff, content=last)
    claim.refresh_from_db()
    assert (claim.status, claim.support_count) == ("proposed", 0)
    document = api.get("/api/v1/export/?model=inceptionv1").json()  # the hidden one left out
    assert [r["current"] for r in document["claims"][0]["reviews"]] == [False, False]
    wipe()
    curator = User.objects.create_user("curator", is_staff=True)
    claims_import(document=_validated(document), importer=curator)
    imported = Claim.objects.get()
    assert (imported.status, imported.support_count, imported.dispute_count) == ("proposed", 0, 0)
    assert not imported.reviews.filter(current=True).exists()


def _validated(document: dict) -> dict:
    doc = ExportDoc(data=document)
    assert doc.is_valid(), doc.errors
    return doc.validated_data


def test_an_import_may_not_turn_a_claim_here_into_another(
    history: list[Claim], staff: User, client_for: Callable[[User], APIClient]
) -> None:
    curator = client_for(staff)
    document = curator.get("/api/v1/export/?model=inceptionv1").json()
    before = [(c.kind, c.target_id, c.revision_number) for c in Claim.objects.order_by("id")]
    for change in ({"target": "inceptionv1/4c:1"}, {"kind": "circuit"}):
        forged = copy.deepcopy(document)
        forged["claims"][1] |= change
        forged["claims"][1]["revisions"].append(
            forged["claims"][1]["revisions"][-1] | {"number": 2, "label": "forged"}
        )
        response = curator.post("/api/v1/import/", forged, format="json")
        assert response.status_code == 400, response.content
        assert "claims.1.target" in response.json()["error"]["fields"]
    assert [(c.kind, c.target_id, c.revision_number) for c in Claim.objects.order_by("id")] == (
        before
    )


def test_an_import_s_history_must_add_up(
    history: list[Claim], staff: User, client_for: Callable[[User], APIClient]
) -> None:
    document = client_for(staff).get("/api/v1/export/?model=inceptionv1").json()
    curator = elsewhere(client_for, "curator2")
    cases = {
        "revisions": {"revisions.0.author": "mallory"},
        "retracted_at": {"retracted_at": "1970-01-01T00:00:00Z"},
        "created": {"created": "9999-12-31T00:00:00Z"},
        "comments": {"comments": [
            {"author": "bob", "body": "early", "created": "2001-01-01T00:00:00Z"}
        ]},
    }  # fmt: skip
    for field, changes in cases.items():
        broken = copy.deepcopy(document)
        (position,) = [i for i, c in enumerate(broken["claims"]) if c["retracted_at"]]
        claim = broken["claims"][position]
        for path, value in changes.items():
            if path.startswith("revisions.0."):
                claim["revisions"][0][path.rsplit(".", 1)[1]] = value
            else:
                claim[path] = value
        response = curator.post("/api/v1/import/", broken, format="json")
        assert response.status_code == 400, (field, response.content)
        fields = response.json()["error"]["fields"]
        assert any(name.startswith(f"claims.{position}.{field}") for name in fields), fields
    assert not Claim.objects.exists()
    assert curator.post("/api/v1/import/", document, format="json").status_code == 200
    year_one = copy.deepcopy(document)
    year_one["claims"][position]["created"] = "0001-01-01T00:00:00Z"  # no overflow either
    assert curator.post("/api/v1/import/", year_one, format="json").status_code == 200


def test_people_of_an_ipv6_instance_get_usernames_that_export_again(
    history: list[Claim], staff: User, client_for: Callable[[User], APIClient]
) -> None:
    document = client_for(staff).get("/api/v1/export/?model=inceptionv1").json()
    curator = elsewhere(client_for, "curator2")
    document["source"] = "http://[fe80::1%25eth0]:8000/"  # a zone id, too
    document["people"][0]["name"] = "\u200b"  # shows nothing: no name here
    report = curator.post("/api/v1/import/", document, format="json").json()
    assert "alice@fe80--1-25eth0-8000" in report["people_created"], report
    imported = User.objects.get(username=document["people"][0]["username"] + "@fe80--1-25eth0-8000")
    assert imported.profile.name == ""
    again = curator.get("/api/v1/export/?model=inceptionv1").json()
    curator = elsewhere(client_for, "curator3")
    assert curator.post("/api/v1/import/", again, format="json").status_code == 200


def test_a_long_foreign_username_keeps_the_host_that_says_whose_it_is(
    history: list[Claim], staff: User, client_for: Callable[[User], APIClient]
) -> None:
    document = client_for(staff).get("/api/v1/export/?model=inceptionv1").json()
    curator = elsewhere(client_for, "curator2")
    document["source"] = LAB_B
    long = "x" * 150
    for claim in document["claims"]:  # alice's claims, by a name as long as a username goes
        for item in (claim, *claim["revisions"]):
            if item["author"] == "alice":
                item["author"] = long
    document["people"] = [
        {**p, "username": long} if p["username"] == "alice" else p for p in document["people"]
    ]

    report = curator.post("/api/v1/import/", document, format="json").json()

    (made,) = [name for name in report["people_created"] if name.startswith("xxx")]
    assert made.endswith("@lab-b.example") and len(made) <= 150
    assert User.objects.get(username=made).profile.origin_username == long


def test_a_review_replaced_there_since_it_was_imported_here_is_replaced_here_too(
    inceptionv1: Model, alice: User, bob: User, staff: User, api: APIClient
) -> None:
    claim = services.claim_create(
        author=alice, target=neuron("inceptionv1/4c:2"), kind="feature", label="a", argument="b"
    )
    services.claim_review(claim=claim, reviewer=bob, verdict="support", reason="yes")
    first = api.get("/api/v1/export/?model=inceptionv1").json()  # bob's support, current
    last = services.claim_review(claim=claim, reviewer=bob, verdict="dispute", reason="spam")
    services.content_hide(moderator=staff, content=last)
    later = api.get("/api/v1/export/?model=inceptionv1").json()  # the support, not current
    wipe()
    curator = User.objects.create_user("curator", is_staff=True)
    claims_import(document=_validated(first), importer=curator)
    assert Claim.objects.get().status == "supported"
    report = claims_import(document=_validated(later), importer=curator)
    assert (report.claims_merged, report.claims_skipped) == (1, 0)  # said, not hidden
    merged = Claim.objects.get()
    assert (merged.status, merged.support_count) == ("proposed", 0)


def test_content_hidden_there_since_it_was_imported_here_is_hidden_here_too(
    inceptionv1: Model, alice: User, bob: User, staff: User, client_for: Callable[[User], APIClient]
) -> None:
    claim = services.claim_create(
        author=alice, target=neuron("inceptionv1/4c:2"), kind="feature", label="a", argument="b"
    )
    review = services.claim_review(claim=claim, reviewer=bob, verdict="dispute", reason="spam")
    comment = services.comment_create(claim=claim, author=bob, body="spam")
    curator = client_for(staff)
    first = curator.get("/api/v1/export/?model=inceptionv1").json()
    services.content_hide(moderator=staff, content=review)
    services.content_hide(moderator=staff, content=comment)
    later = curator.get("/api/v1/export/?model=inceptionv1").json()  # staff's: marked hidden
    wipe()
    importer = User.objects.create_user("curator", is_staff=True)
    claims_import(document=_validated(first), importer=importer)
    assert Claim.objects.get().status == "disputed"
    claims_import(document=_validated(later), importer=importer)
    merged = Claim.objects.get()
    assert (merged.status, merged.dispute_count) == ("proposed", 0)
    assert merged.reviews.get().hidden and merged.comments.get().hidden


EVIL = "https://lab-evil.example/"
NEW_UID = "2f1c8f0e-5d7b-4c0e-9a55-8f1f7f0b9c11"


def _from_elsewhere(document: dict, *, source: str | None = EVIL) -> dict:
    """``document`` (an export of here) as another instance would send it back: its people
    of this instance named by their origin."""
    document = copy.deepcopy(document)
    if source is None:
        document.pop("source")
    else:
        document["source"] = source
        for person in document["people"]:
            person |= {"origin": "http://testserver/", "origin_username": person["username"]}
    return document


def _with_people(document: dict, *usernames: str) -> dict:
    """``document`` with more people of its source."""
    return document | {"people": [*document["people"], *({"username": n} for n in usernames)]}


def _refused_at(curator: APIClient, document: dict) -> set[str]:
    response = curator.post("/api/v1/import/", document, format="json")
    assert response.status_code == 400, response.json()
    return set(response.json()["error"]["fields"])


def test_only_this_instance_s_own_export_writes_as_its_people(
    history: list[Claim],
    staff: User,
    alice: User,
    client_for: Callable[[User], APIClient],
) -> None:
    curator = client_for(staff)
    now = timezone.now().isoformat()
    own = curator.get("/api/v1/export/?model=inceptionv1").json()
    circuit = copy.deepcopy(own["claims"][0])  # alice's, with bob's and carol's reviews
    new = copy.deepcopy(circuit) | {"uid": NEW_UID, "reviews": [], "comments": []}
    before = curator.get("/api/v1/export/?model=inceptionv1").json()
    users = User.objects.count()

    # A new claim, a revision, a review or a comment "by" a person of this instance.
    elsewhere_new = _from_elsewhere(own) | {"claims": [new]}
    assert _refused_at(curator, elsewhere_new) == {"claims.0.author"}
    # Saying it comes from here is not enough: only this instance's signature says that, of
    # its own export as it was exported.
    forged = copy.deepcopy(own) | {"claims": [new]}
    assert forged["source"] == "http://testserver/" and forged["signature"]
    assert _refused_at(curator, forged) == {"claims.0.author"}
    unsigned = {key: value for key, value in forged.items() if key != "signature"}
    assert _refused_at(curator, unsigned) == {"claims.0.author"}
    assert _refused_at(curator, _from_elsewhere(own, source=None) | {"claims": [new]}) == {
        "claims.0.author"
    }
    later = copy.deepcopy(circuit)
    later["revisions"].append(later["revisions"][-1] | {"number": 3, "label": "trucks"})
    assert _refused_at(curator, _from_elsewhere(own) | {"claims": [later]}) == {
        "claims.0.revisions.2.author"
    }
    reviewed = copy.deepcopy(circuit)
    reviewed["reviews"].append(reviewed["reviews"][-1] | {"created": now})
    assert _refused_at(curator, _from_elsewhere(own) | {"claims": [reviewed]}) == {
        "claims.0.reviews.3.reviewer"
    }
    commented = copy.deepcopy(circuit)
    commented["comments"] = [{"author": "alice", "body": "hi", "created": now}]
    assert _refused_at(curator, _from_elsewhere(own) | {"claims": [commented]}) == {
        "claims.0.comments.0.author"
    }
    # Retracting one of theirs, or making one of them.
    retracted = copy.deepcopy(circuit) | {"retracted_at": now}
    assert _refused_at(curator, _from_elsewhere(own) | {"claims": [retracted]}) == {
        "claims.0.retracted_at"
    }
    stranger = _from_elsewhere(own) | {"claims": []}
    stranger["people"].append(
        {"username": "admin", "origin": "http://testserver/", "origin_username": "admin"}
    )
    stranger["lists"] = [
        {"uid": NEW_UID, "title": "mine", "owner": "admin", "entries": [{"ref": "4c:1"}]}
    ]
    assert _refused_at(curator, stranger) == {f"people.{len(stranger['people']) - 1}"}

    # A claim or a list here keeps its author or owner.
    taken = copy.deepcopy(circuit) | {"author": "mallory"}
    taken["revisions"][0]["author"] = "mallory"
    taking = _with_people(_from_elsewhere(own) | {"claims": [taken]}, "mallory")
    assert _refused_at(curator, taking) == {"claims.0.author"}
    as_alice = client_for(alice)
    url = as_alice.post("/api/v1/lists/", {"title": "curves"}).json()["api_url"]
    as_alice.post(f"{url}entries/", {"neuron": "inceptionv1/3b:10", "note": "early"})
    mine = curator.get("/api/v1/export/?model=inceptionv1").json()["lists"][0]
    theirs = mine | {"owner": "mallory"}
    taking = _with_people(_from_elsewhere(own) | {"lists": [theirs]}, "mallory")
    assert _refused_at(curator, taking) == {"lists.0.owner"}
    # A list of theirs that is not here, or an entry it lacks, they deleted here (or never
    # made): left out, and said so, not refused (the rest of the document imports).
    added = mine | {"entries": [{"ref": "inceptionv1/4c:1", "note": "EVIL"}]}
    gone = mine | {"uid": NEW_UID}
    response = curator.post(
        "/api/v1/import/", _from_elsewhere(own) | {"lists": [added, gone]}, format="json"
    )
    assert response.status_code == 200
    assert [line.split(":")[0] for line in response.json()["ignored"]] == [
        "lists.0.entries.0",
        "lists.1",
    ]

    # Nothing was stored by any of them.
    assert User.objects.count() == users + 0
    after = curator.get("/api/v1/export/?model=inceptionv1").json()
    assert comparable(after) | {"lists": []} == comparable(before)
    assert after["lists"] == [mine]

    # A review by one of its own people on a claim of here: another instance adds that.
    visitor = copy.deepcopy(circuit)
    visitor["reviews"].append(
        {
            "revision": 2,
            "reviewer": "zed",
            "verdict": "support",
            "reason": "checked",
            "created": now,
        }
    )
    visiting = _with_people(_from_elsewhere(own) | {"claims": [visitor]}, "zed")
    report = curator.post("/api/v1/import/", visiting, format="json").json()
    assert (report["claims_merged"], report["reviews"], report["people_created"]) == (
        1,
        1,
        ["zed@lab-evil.example"],
    )


def test_a_review_or_comment_given_twice_in_a_document_is_imported_once(
    history: list[Claim], staff: User, client_for: Callable[[User], APIClient]
) -> None:
    curator = client_for(staff)
    document = _from_elsewhere(curator.get("/api/v1/export/?model=inceptionv1").json())
    document["source"] = "https://lab-a.example/"
    for person in document["people"]:  # all of lab A this time
        person.pop("origin"), person.pop("origin_username")
    circuit = document["claims"][0]
    circuit["reviews"].append(circuit["reviews"][-1])
    circuit["comments"].append(circuit["comments"][-1])
    wipe()
    report = client_for(User.objects.create_user("curator2", is_staff=True)).post(
        "/api/v1/import/", document, format="json"
    )
    assert report.status_code == 200, report.json()
    assert (report.json()["reviews"], report.json()["comments"]) == (3, 1)
    assert (Review.objects.count(), Comment.objects.count()) == (3, 1)


def test_flags_of_what_is_here_follow_only_its_author_s_own_instance(
    history: list[Claim], staff: User, client_for: Callable[[User], APIClient]
) -> None:
    curator = client_for(staff)
    own = curator.get("/api/v1/export/?model=inceptionv1").json()
    statuses = {str(c.uid): (c.status, c.hidden) for c in Claim.objects.all()}
    # This instance's own export, edited: bob's current review marked replaced, the
    # circuit and its comment marked hidden. What is here is the truth about its people.
    edited = copy.deepcopy(own)
    circuit = edited["claims"][0]
    circuit["reviews"][-1]["current"] = False
    circuit["hidden"] = True
    circuit["comments"][0]["hidden"] = True
    for document in (edited, _from_elsewhere(edited)):
        report = curator.post("/api/v1/import/", document, format="json").json()
        assert (report["claims_skipped"], report["claims_merged"]) == (3, 0), report
    assert {str(c.uid): (c.status, c.hidden) for c in Claim.objects.all()} == statuses
    assert not Comment.objects.filter(hidden=True).exists()


LAB_B = "https://lab-b.example/"


def test_reviews_and_comments_made_elsewhere_are_history_whatever_happened_here_since(
    inceptionv1: Model, alice: User, staff: User, client_for: Callable[[User], APIClient]
) -> None:
    """A review of revision 1 given on another instance, then the claim revised, retracted
    and hidden here: importing that instance's export adds the review (on revision 1) and
    the comment. Refused, every later export of that instance was refused whole, for ever."""
    claim = services.claim_create(
        author=alice, target=neuron("inceptionv1/4c:2"), kind="feature", label="a", argument="b"
    )
    curator = client_for(staff)
    there = _from_elsewhere(curator.get("/api/v1/export/?model=inceptionv1").json(), source=LAB_B)
    before = timezone.now().isoformat()
    there["people"].append({"username": "carol", "name": "", "institution": ""})
    there["claims"][0]["reviews"].append(
        {"revision": 1, "reviewer": "carol", "verdict": "support", "reason": "v1 is right",
         "current": True, "hidden": False, "created": before}
    )  # fmt: skip
    there["claims"][0]["comments"].append(
        {"author": "carol", "body": "Seen on lab B.", "hidden": False, "created": before}
    )
    services.claim_update(
        claim=claim, author=alice, based_on=1, label="a", argument="b, revised", expression=""
    )
    services.claim_retract(claim=claim, author=alice)
    services.content_hide(moderator=staff, content=claim)

    response = curator.post("/api/v1/import/", there, format="json")

    assert response.status_code == 200, response.json()
    assert (response.json()["reviews"], response.json()["comments"]) == (1, 1)
    claim.refresh_from_db()
    review = claim.reviews.get()
    assert (review.revision.number, review.reviewer.username, review.current) == (
        1, "carol@lab-b.example", True,
    )  # fmt: skip
    assert claim.support_count == 0 and claim.status == "retracted"  # revision 2 has none
    assert claim.comments.get().body == "Seen on lab B." and claim.hidden
    again = curator.post("/api/v1/import/", there, format="json").json()
    assert (again["reviews"], again["comments"]) == (0, 0)
    # An older review of carol's, learnt later (from an instance that synced with lab B
    # before she changed her mind, where it is still current), is not her current one here.
    earlier = (timezone.now() - timedelta(hours=1)).isoformat()
    there["claims"][0]["reviews"].append(
        {"revision": 1, "reviewer": "carol", "verdict": "dispute", "reason": "at first, no",
         "current": True, "hidden": False, "created": earlier}
    )  # fmt: skip
    assert curator.post("/api/v1/import/", there, format="json").json()["reviews"] == 1
    assert [(r.verdict, r.current) for r in claim.reviews.order_by("created")] == [
        ("dispute", False), ("support", True),
    ]  # fmt: skip


def test_with_its_site_url_an_instance_knows_its_people_by_whatever_host_it_is_reached(
    history: list[Claim],
    staff: User,
    client_for: Callable[[User], APIClient],
    settings: Settings,
) -> None:
    curator = client_for(staff)
    own = curator.get("/api/v1/export/?model=inceptionv1").json()
    new = copy.deepcopy(own["claims"][0]) | {"uid": NEW_UID, "reviews": [], "comments": []}
    # The same site by another name: without the setting, its imports would take it for
    # another instance, and alice of "http://testserver/" for someone else.
    settings.ALLOWED_HOSTS = ["testserver", "localhost"]
    settings.MICROSCOPE_SITE_URL = "http://testserver/"
    source = curator.get("/api/v1/export/?model=inceptionv1", HTTP_HOST="localhost").json()
    assert source["source"] == "http://testserver/"
    refused = curator.post(
        "/api/v1/import/",
        _from_elsewhere(own) | {"claims": [new]},
        format="json", HTTP_HOST="localhost",
    )  # fmt: skip
    assert refused.status_code == 400
    assert "alice is a person of this instance" in str(refused.json()["error"]["fields"])


LAB_A, LAB_C = "https://lab-a.example/", "https://lab-c.example/"


def _lab_a(document: dict) -> dict:
    """An export of here as lab A's: all its people are lab A's."""
    document = copy.deepcopy(document) | {"source": LAB_A}
    for person in document["people"]:
        person.pop("origin", None), person.pop("origin_username", None)
    return document


@pytest.fixture
def from_lab_a(
    history: list[Claim], staff: User, client_for: Callable[[User], APIClient]
) -> tuple[APIClient, dict]:
    """Lab A's claims imported here; a curator here, and lab A's export."""
    document = _lab_a(client_for(staff).get("/api/v1/export/?model=inceptionv1").json())
    wipe()
    curator = client_for(User.objects.create_user("curator2", is_staff=True))
    assert curator.post("/api/v1/import/", document, format="json").status_code == 200
    return curator, document


def test_a_claim_retracted_or_hidden_there_since_is_so_here_and_the_report_says_so(
    from_lab_a: tuple[APIClient, dict],
) -> None:
    curator, document = from_lab_a
    circuit = document["claims"][0]
    # Retracted and hidden, as a third instance says: not its say, and said so.
    third = copy.deepcopy(document) | {"source": LAB_C}
    for person in third["people"]:
        person |= {"origin": LAB_A, "origin_username": person["username"]}
    third["claims"][0] |= {"retracted_at": timezone.now().isoformat(), "hidden": True}
    # With something it may add: a comment by one of lab A's people, made since.
    comment = {"author": "carol", "body": "Seen at lab C.", "created": timezone.now().isoformat()}
    third["claims"][0]["comments"].append(comment)
    report = curator.post("/api/v1/import/", third, format="json").json()
    assert (report["claims_merged"], report["claims_skipped"], report["flags"]) == (1, 2, 0)
    assert report["comments"] == 1
    assert [line.split(":")[0] for line in report["ignored"]] == [
        "claims.0.retracted_at",
        "claims.0.hidden",
    ]
    claim = Claim.objects.get(uid=circuit["uid"])
    assert not claim.retracted and not claim.hidden

    # The same, from lab A itself: taken, and counted.
    retracted = copy.deepcopy(document)
    retracted["claims"][0] |= {"retracted_at": timezone.now().isoformat(), "hidden": True}
    report = curator.post("/api/v1/import/", retracted, format="json").json()
    assert (report["claims_merged"], report["claims_skipped"], report["flags"]) == (1, 2, 2)
    assert report["ignored"] == []
    claim.refresh_from_db()
    assert claim.retracted and claim.hidden and claim.status == "retracted"


def test_a_review_or_comment_that_the_document_changed_is_refused_whole(
    from_lab_a: tuple[APIClient, dict],
) -> None:
    curator, document = from_lab_a
    circuit = document["claims"][0]
    changed_review = copy.deepcopy(document)
    changed_review["claims"][0]["reviews"][0]["verdict"] = "support"
    changed_reason = copy.deepcopy(document)
    changed_reason["claims"][0]["reviews"][0]["reason"] = "fine after all"
    changed_comment = copy.deepcopy(document)
    changed_comment["claims"][0]["comments"][0]["body"] = "Awful."
    for changed, where in [
        (changed_review, "claims.0.reviews.0"),
        (changed_reason, "claims.0.reviews.0"),
        (changed_comment, "claims.0.comments.0"),
    ]:
        assert circuit["reviews"][0]["verdict"] == "dispute"
        assert _refused_at(curator, changed) == {where}
    # Two of them in one document, the same but for their content: which one is meant is
    # not a guess, on a claim new here too.
    twice = copy.deepcopy(document)
    reviews = twice["claims"][0]["reviews"]
    reviews.append(reviews[0] | {"reason": "another reason"})
    wipe()
    curator = APIClient()
    curator.force_authenticate(User.objects.create_user("curator3", is_staff=True))
    assert _refused_at(curator, twice) == {f"claims.0.reviews.{len(reviews) - 1}"}
    assert Claim.objects.count() == 0


def test_a_refused_change_leaves_what_was_imported_as_it_was(
    from_lab_a: tuple[APIClient, dict],
) -> None:
    curator, document = from_lab_a
    before = curator.get("/api/v1/export/?model=inceptionv1").json()
    changed = copy.deepcopy(document)
    # A review it would add (reviews are taken before comments), then a comment it refuses.
    review = {"revision": 2, "reviewer": "carol", "verdict": "support", "reason": "now I see"}
    changed["claims"][0]["reviews"].append(review | {"created": timezone.now().isoformat()})
    changed["claims"][0]["comments"][0]["body"] = "Awful."
    assert _refused_at(curator, changed) == {"claims.0.comments.0"}
    after = curator.get("/api/v1/export/?model=inceptionv1").json()
    unsigned = {"exported": None, "signature": None}  # both of the moment of export
    assert after | unsigned == before | unsigned


def test_a_document_names_only_its_own_people_and_dates_with_their_time_zone(
    from_lab_a: tuple[APIClient, dict],
) -> None:
    curator, document = from_lab_a
    users = User.objects.count()
    stranger = copy.deepcopy(document)
    stranger["claims"][0]["reviews"].append(
        {
            "revision": 2,
            "reviewer": "mallory",
            "verdict": "support",
            "reason": "me",
            "created": timezone.now().isoformat(),
        }
    )
    index = len(stranger["claims"][0]["reviews"]) - 1
    assert _refused_at(curator, stranger) == {f"claims.0.reviews.{index}.reviewer"}
    naive = copy.deepcopy(document)
    naive["claims"][0]["revisions"][0]["created"] = "2026-01-01T00:00:00"
    response = curator.post("/api/v1/import/", naive, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {
        "claims.0.revisions.0.created": [
            "no time zone; give a date and time with its offset (2026-11-02T09:15:00Z)"
        ]
    }
    bare = copy.deepcopy(document)
    bare["claims"][0]["revisions"][0]["created"] = "2026-01-01"  # a day: no moment either
    response = curator.post("/api/v1/import/", bare, format="json")
    assert list(response.json()["error"]["fields"]) == ["claims.0.revisions.0.created"]
    assert User.objects.count() == users


def test_a_hand_written_document_imported_twice_adds_nothing_the_second_time(
    inceptionv1: Model, client_for: Callable[[User], APIClient]
) -> None:
    now = timezone.now().isoformat()
    revision = {
        "number": 1,
        "label": "  cars ",  # stored stripped
        "argument": "wheels and windows ",
        "expression": "4c:447=4b:373+ 4b:237",  # stored in its canonical form
        "author": "ann",
        "created": now,
    }
    document = {
        "format": FORMAT,
        "version": VERSION,
        "model": "inceptionv1",
        "source": LAB_A,
        "people": [{"username": "ann"}],
        "claims": [
            {
                "uid": NEW_UID,
                "kind": "circuit",
                "target": "inceptionv1/4c:447",
                "author": "ann",
                "created": now,
                "revisions": [revision],
            }
        ],
    }
    curator = client_for(User.objects.create_user("curator", is_staff=True))
    first = curator.post("/api/v1/import/", document, format="json")
    assert first.status_code == 200 and first.json()["claims_created"] == 1, first.json()
    stored = ClaimRevision.objects.get()
    assert (stored.label, stored.expression) == ("cars", "4c:447 = 4b:373 + 4b:237")
    again = curator.post("/api/v1/import/", document, format="json")
    assert again.status_code == 200, again.json()
    assert again.json()["claims_skipped"] == 1
