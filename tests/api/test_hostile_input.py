"""What an outside tester's hostile requests found, each once a 500 (most of them on every
later load of a shared page), now a clear answer: deeply nested Markdown, an index of
thousands of digits, digits that are not ASCII, control characters in a feed, JSON nested
100,000 deep, an import naming an instance or a person no URL can carry; and what was
stored or answered wrongly without a 500: a number where text goes, control characters in a
name, a new claim on no neuron."""

from __future__ import annotations

import base64
import copy
import io
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode
from xml.etree import ElementTree

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from annotations import grammar, services
from annotations.models import Claim, ClaimRevision, ClaimTerm, Comment, NeuronList, Review
from api.models import ApiToken
from jobs.models import RenderJob
from neurons.models import Model
from neurons.references import BadReference, parse, resolve
from people.models import Profile

NINES = "9" * 5000  # past the 4,300 digits Python's int() reads from a string
DEEP_LIST = "- " * 3000 + "x"  # deeper than the Markdown parser nests
EXPRESSION = "4c:447 = 4b:373 + 4b:237"


@pytest.fixture
def claim(inceptionv1: Model, alice: User) -> Claim:
    return services.claim_create(
        author=alice,
        target=resolve("inceptionv1/4c:447"),
        kind="circuit",
        label="cars",
        argument="wheels",
        expression=EXPRESSION,
    )


def test_markdown_nested_too_deep_for_the_parser_is_shown_as_text(
    claim: Claim, alice: User, bob: User
) -> None:
    services.claim_update(
        claim=claim,
        author=alice,
        based_on=1,
        label="cars",
        argument=DEEP_LIST,
        expression=EXPRESSION,
    )
    services.comment_create(claim=claim, author=bob, body=DEEP_LIST)
    page = Client().get(f"/claims/{claim.pk}/")
    assert page.status_code == 200
    assert page.content.decode().count("- - - - x") >= 2  # the argument and the comment


def test_an_index_of_thousands_of_digits_is_no_reference(claim: Claim, alice: User) -> None:
    with pytest.raises(BadReference):
        parse(f"inceptionv1/4c:{NINES}")
    with pytest.raises(BadReference):
        parse("inceptionv1/4c:1234567890")  # ten digits: no layer has that many channels
    assert parse("inceptionv1/4c:447").index == 447
    services.claim_update(
        claim=claim,
        author=alice,
        based_on=1,
        label="cars",
        argument=f"not 4c:{NINES}",
        expression=EXPRESSION,
    )
    browser = Client()
    assert browser.get(f"/claims/{claim.pk}/").status_code == 200
    assert browser.get(f"/n/inceptionv1/4c:{NINES}").status_code == 404
    assert browser.get("/n/", {"q": f"inceptionv1/4c:{NINES}"}).status_code in (200, 404)
    browser.force_login(alice)
    new = browser.get("/claims/new/", {"target": f"inceptionv1/4c:{NINES}"})
    assert new.status_code in (200, 400, 404)
    preview = browser.get(
        "/claims/preview/", {"expression": "4c:447 = 4b:1", "target": f"inceptionv1/4c:{NINES}"}
    )
    assert preview.status_code in (200, 400)


def test_digits_that_are_not_ascii_are_refused_where_a_number_is_read(
    claim: Claim, api: APIClient
) -> None:
    for url in (
        "/api/v1/claims/?page_size=%C2%B2",  # "²": str.isdigit says yes, int() says no
        f"/api/v1/claims/{claim.pk}/reviews/?page_size=%C2%B2",
        f"/api/v1/claims/{claim.pk}/evidence/?revision=%C2%B2",
    ):
        response = api.get(url)
        assert response.status_code == 400, url
        assert response.json()["error"]["fields"], url
    for revision in ("%C2%B2", "abc", "0", "2"):  # a revision of the claim, or a 400
        page = Client().get(f"/claims/{claim.pk}/?revision={revision}")
        assert page.status_code == 400
        assert b"revision: the claim has revisions 1 to 1" in page.content
    assert Client().get(f"/claims/{claim.pk}/?revision=1").status_code == 200
    with pytest.raises(BadReference):
        parse("inceptionv1/4c:\u0661")  # ARABIC-INDIC DIGIT ONE
    with pytest.raises(grammar.GrammarError):
        grammar.circuit_parse("4c:20 = \u0661*4b:1")


def test_control_characters_are_refused_and_stored_ones_leave_the_feed_readable(
    claim: Claim, alice: User, client_for: Callable[[User], APIClient]
) -> None:
    as_alice = client_for(alice)
    posted = as_alice.post(
        "/api/v1/claims/",
        {"target": "inceptionv1/4c:1", "kind": "feature", "label": "a\x01b", "argument": "c"},
        format="json",
    )
    assert posted.status_code == 400
    assert "\\x01" in posted.json()["error"]["fields"]["label"][0]
    listed = as_alice.post("/api/v1/lists/", {"title": "t\x1bu"}, format="json")
    assert listed.status_code == 400 and "title" in listed.json()["error"]["fields"]
    # Text stored before the check (an older claim): the feed drops what XML cannot carry.
    claim.current_revision.label = "a\u202eb\x01c"
    claim.current_revision.argument = "d\x02e"
    claim.current_revision.save(update_fields=["label", "argument"])
    feed = Client().get("/models/inceptionv1/claims.atom")
    assert feed.status_code == 200
    assert "a\u202ebc" in feed.content.decode() and "\x01" not in feed.content.decode()


def test_json_nested_a_hundred_thousand_deep_is_a_400(
    inceptionv1: Model, alice: User, client_for: Callable[[User], APIClient]
) -> None:
    as_alice = client_for(alice)
    for body in ("[" * 100_000 + "]" * 100_000, '{"a":' * 50_000 + "1" + "}" * 50_000):
        response = as_alice.post("/api/v1/claims/", body, content_type="application/json")
        assert response.status_code == 400
        assert "nested too deeply" in response.json()["error"]["message"]
    twice = '{"target": "inceptionv1/4c:1", "kind": "feature", "label": "a", "label": "b"}'
    response = as_alice.post("/api/v1/claims/", twice, content_type="application/json")
    assert response.status_code == 400
    assert "the key 'label' is given twice" in response.json()["error"]["message"]
    assert not Claim.objects.exists()


def test_an_import_naming_an_instance_or_a_person_no_url_can_carry_is_refused(
    claim: Claim, staff: User, client_for: Callable[[User], APIClient]
) -> None:
    curator = client_for(staff)
    document = curator.get("/api/v1/export/?model=inceptionv1").json()
    document["claims"][0]["uid"] = "0b5c3a1e-6f8d-4c2e-9a7b-1d2e3f4a5b6c"  # a new claim
    document["claims"][0]["author"] = document["people"][0]["username"] = "zed"
    document["claims"][0]["revisions"][0]["author"] = "zed"
    before = (Claim.objects.count(), User.objects.count())
    cases = {
        "source": {"source": "http://["},
        "people.0.origin": {"people.0.origin": "http://[::1"},
        "people.0.origin_username": {"people.0.origin_username": "a b/c?d#e"},
        # A password in an address would be shown in every export after.
        "source ": {"source": "http://user:pass@[::1]:99/x"},
        "people.0.origin ": {"people.0.origin": "https://alice@lab-c.example/"},
        "claims.0.uid": {"claims.0.uid": 0},  # DRF's UUIDField reads it as a UUID
    }
    for field, change in cases.items():
        broken = copy.deepcopy(document)
        for path, value in change.items():
            *parents, last = path.split(".")
            target = broken
            for part in parents:
                target = target[int(part)] if part.isdigit() else target[part]
            target[last] = value
        response = curator.post("/api/v1/import/", broken, format="json")
        assert response.status_code == 400, (field, response.content)
        fields = response.json()["error"]["fields"]
        assert any(name.startswith(field.strip().split(".")[0]) for name in fields), fields
    for source in ("javascript:alert(1)", "lab b", "ftp://lab-b.example/"):
        broken = copy.deepcopy(document) | {"source": source}
        assert curator.post("/api/v1/import/", broken, format="json").status_code == 400
    # The same person, or claim, twice.
    for name in ("people", "claims"):
        doubled = copy.deepcopy(document)
        doubled[name].append(doubled[name][0])
        response = curator.post("/api/v1/import/", doubled, format="json")
        key = "username" if name == "people" else "uid"
        assert set(response.json()["error"]["fields"]) == {f"{name}.{len(doubled[name]) - 1}.{key}"}
    now = timezone.now()
    # A review made (more than a day) after the claim was retracted.
    late = copy.deepcopy(document)
    late["claims"][0]["created"] = (now - timedelta(hours=40)).isoformat()
    late["claims"][0]["revisions"][0]["created"] = (now - timedelta(hours=40)).isoformat()
    late["claims"][0]["retracted_at"] = (now - timedelta(hours=30)).isoformat()
    late["claims"][0]["reviews"] = [
        {"revision": 1, "reviewer": "yan", "verdict": "support", "reason": "late",
         "created": now.isoformat()}
    ]  # fmt: skip
    response = curator.post("/api/v1/import/", late, format="json")
    assert response.json()["error"]["fields"] == {
        "claims.0.reviews.0.created": ["a review made after the claim was retracted"]
    }
    # Revision 2 dated (more than a day) before revision 1.
    shuffled = copy.deepcopy(document)
    first = shuffled["claims"][0]["revisions"][0]
    shuffled["claims"][0]["created"] = (now - timedelta(hours=12)).isoformat()
    first["created"] = (now + timedelta(hours=20)).isoformat()
    second = first | {"number": 2, "created": (now - timedelta(hours=10)).isoformat()}
    shuffled["claims"][0]["revisions"].append(second)
    response = curator.post("/api/v1/import/", shuffled, format="json")
    assert response.json()["error"]["fields"] == {
        "claims.0.revisions.1.created": ["revision 2 is dated before revision 1"]
    }
    assert (Claim.objects.count(), User.objects.count()) == before
    # A well-formed one still imports, and the pages that list its author render.
    fine = copy.deepcopy(document) | {"source": "https://lab-b.example:8443/api/v1/export/"}
    report = curator.post("/api/v1/import/", fine, format="json").json()
    assert report["people_created"] == ["zed@lab-b.example-8443"]  # a username has no ":"
    assert Client().get("/claims/").status_code == 200
    # Its people export again and import elsewhere; so do older documents' plain names
    # ("lab-a") and text stored before control characters were refused.
    again = curator.get("/api/v1/export/?model=inceptionv1").json()
    again["source"] = "lab-a"
    again["claims"][0]["revisions"][0]["argument"] += "\x0c"
    again["claims"][0]["revisions"][0]["label"] += "\nsecond\tline"  # one line, once
    again["claims"][1]["revisions"][0]["label"] += " \u2067\u05db\u202b"  # left open
    Claim.objects.update(current_revision=None)
    for model in (Review, Comment, ClaimTerm, ClaimRevision, Claim):
        model.objects.all().delete()
    report = curator.post("/api/v1/import/", again, format="json").json()
    assert report["claims_created"] == 2, report
    assert not Claim.objects.filter(revisions__argument__contains="\x0c").exists()
    assert ClaimRevision.objects.filter(label__endswith=" second line").count() == 1
    closed = ClaimRevision.objects.get(label__contains="\u2067").label
    assert closed.endswith(" \u2067\u05db\u202b\u202c\u2069")  # closed, innermost first


def test_a_token_name_with_control_characters_is_refused(alice: User) -> None:
    browser = Client()
    browser.force_login(alice)
    assert browser.post("/account/tokens/", {"name": "\u200b"}).status_code == 400
    for name in ("\x00", "lab\x07", "lab\u202e"):
        response = browser.post("/account/tokens/", {"name": name})
        assert response.status_code == 400
        assert b"Control characters" in response.content
    assert not ApiToken.objects.filter(user=alice).exists()


def test_a_cursor_never_given_out_is_a_400_naming_it(claim: Claim, api: APIClient) -> None:
    crafted = base64.b64encode(b"p=9999-99-99").decode()  # well-formed, at no possible row
    for cursor in ("garbage", crafted):
        response = api.get("/api/v1/claims/", {"cursor": cursor})
        assert response.status_code == 400, cursor
        assert "cursor" in response.json()["error"]["fields"], cursor
    for edge in (b"p=0001-01-01T00:00:00+05:00", b"p=9999-12-31T23:59:59-05:00"):
        # Out of range once in UTC: an OverflowError on SQLite, a date on PostgreSQL.
        cursor = base64.b64encode(edge).decode()
        assert api.get("/api/v1/claims/", {"cursor": cursor}).status_code in (200, 400)
    assert api.get("/api/v1/claims/", {"page_size": NINES}).status_code == 400
    assert api.get(f"/api/v1/claims/{claim.pk}/evidence/", {"revision": NINES}).status_code == 400
    assert Client().get(f"/claims/{claim.pk}/", {"revision": NINES}).status_code == 400


def test_a_review_or_an_edit_of_a_revision_that_does_not_exist_says_so(
    claim: Claim, alice: User, bob: User, client_for: Callable[[User], APIClient]
) -> None:
    review = {"verdict": "support", "reason": "ok", "revision": 2}
    response = client_for(bob).post(f"/api/v1/claims/{claim.pk}/reviews/", review, format="json")
    assert response.status_code == 400
    fields = response.json()["error"]["fields"]
    assert fields["revision"] == ["the claim has revisions 1 to 1, not 2"]
    with pytest.raises(services.ClaimError, match="revisions 1 to 1, not 99999999999999999999"):
        services.claim_update(
            claim=claim,
            author=alice,
            based_on=99999999999999999999,
            label="cars",
            argument="wheels",
            expression=EXPRESSION,
        )


def test_a_person_whose_username_no_url_segment_holds_still_has_pages(claim: Claim) -> None:
    """Usernames that an import made before origin usernames were checked."""
    odd = User.objects.create_user("a b/c?d#e@lab-b.example")
    services.comment_create(claim=claim, author=odd, body="hello")
    browser = Client()
    assert browser.get("/claims/").status_code == 200
    page = browser.get(f"/claims/{claim.pk}/").content.decode()
    url = "/people/a%20b/c%3Fd%23e@lab-b.example/"
    assert f'href="{url}"' in page
    assert browser.get(url).context["person"] == odd


def test_a_number_where_text_goes_is_refused_not_stored_as_its_str(
    inceptionv1: Model, alice: User, client_for: Callable[[User], APIClient]
) -> None:
    as_alice = client_for(alice)
    post = {"target": "inceptionv1/4c:1", "kind": "feature", "argument": "c"}
    for label in (7, 1.5, True):
        response = as_alice.post("/api/v1/claims/", post | {"label": label}, format="json")
        assert response.status_code == 400, label
        assert response.json()["error"]["fields"]["label"] == ["Not a valid string."]
    # 1e400 is more than a float holds: Python reads it as inf, as DRF refuses "Infinity".
    body = '{"target": "inceptionv1/4c:1", "kind": "feature", "argument": "c", "label": 1e400}'
    response = as_alice.post("/api/v1/claims/", body, content_type="application/json")
    assert response.status_code == 400
    assert "number out of range: 1e400" in response.json()["error"]["message"]
    listed = as_alice.post("/api/v1/lists/", {"title": 12}, format="json")
    assert listed.status_code == 400 and "title" in listed.json()["error"]["fields"]
    assert not Claim.objects.exists()
    fine = as_alice.post("/api/v1/claims/", post | {"label": "7", "argument": "1e400"})
    assert fine.status_code == 201, fine.content


def test_a_profile_name_with_control_characters_is_refused(alice: User) -> None:
    browser = Client()
    browser.force_login(alice)
    response = browser.post("/accounts/profile/", {"name": "Ada\x1b[31m", "institution": ""})
    assert b"control characters" in response.content and b"\\x1b" in response.content
    invisible = browser.post("/accounts/profile/", {"name": "\u200b", "institution": ""})
    assert b"shows nothing" in invisible.content
    assert not Profile.objects.filter(name__contains="\x1b").exists()
    assert not Profile.objects.filter(name="\u200b").exists()
    signup = Client().post(
        "/accounts/signup/",
        {"username": "eve", "name": "Eve", "institution": "Lab\x07",
         "password1": "a long enough passphrase", "password2": "a long enough passphrase"},
    )  # fmt: skip
    assert b"control characters" in signup.content
    assert not User.objects.filter(username="eve").exists()


def test_a_new_claim_on_a_neuron_that_does_not_exist_is_a_400_naming_target(
    inceptionv1: Model, alice: User
) -> None:
    browser = Client()
    browser.force_login(alice)
    asked = browser.get("/claims/new/", {"target": "inceptionv1/4c:9999"})
    assert asked.status_code == 400
    assert b"target: " in asked.content and b"4c" in asked.content
    post = {"target": "nosuchmodel/1:1", "kind": "feature", "label": "x", "argument": "y"}
    posted = browser.post("/claims/new/", post)
    assert posted.status_code == 400 and b"target: " in posted.content
    assert not Claim.objects.exists()


def test_text_the_feed_cannot_carry_or_that_reverses_the_page_is_refused(
    claim: Claim, alice: User, client_for: Callable[[User], APIClient]
) -> None:
    as_alice = client_for(alice)
    post = {"target": "inceptionv1/4c:1", "kind": "feature", "argument": "c"}
    odd = ("\uffff\ufffe", "a\ufdd0b", "x\U0010ffff", "a\u202edog", "\u200b", " \u2060 ", "a\x85b")
    for label in odd:
        response = as_alice.post("/api/v1/claims/", post | {"label": label}, format="json")
        assert response.status_code == 400, repr(label)
        assert "label" in response.json()["error"]["fields"]
    # An embedding or an isolate left open would reorder the author's name after it, and
    # what follows on every list.
    for label in ("cars \u2067\u05db", "\u202bcars", "\u2066a\u202bb\u2069 \u202ac"):
        response = as_alice.post("/api/v1/claims/", post | {"label": label}, format="json")
        assert response.status_code == 400, repr(label)
        assert "left open" in response.json()["error"]["fields"]["label"][0], response.json()
    # A lone surrogate, as JSON escapes it: no database stores one.
    lone = '{"target": "inceptionv1/4c:1", "kind": "feature", "argument": "c", "label": "a\\ud800"}'
    response = as_alice.post("/api/v1/claims/", lone, content_type="application/json")
    assert response.status_code == 400 and "lone surrogate" in response.json()["error"]["message"]
    lone = '{"body": "\\udfff"}'
    comment = as_alice.post(
        f"/api/v1/claims/{claim.pk}/comments/", lone, content_type="application/json"
    )
    assert comment.status_code == 400 and "lone surrogate" in comment.json()["error"]["message"]
    rtl = "\u202b\u05db\u05dc\u05d1\u202c \u2067x\u2069"  # an embedding, and an isolate
    fine = as_alice.post("/api/v1/claims/", post | {"label": rtl})
    assert fine.status_code == 201, fine.content  # Hebrew, and an isolate, are text
    emoji = as_alice.post("/api/v1/claims/", post | {"label": "\U0001f469\u200d\U0001f52c cars"})
    assert emoji.status_code == 201, emoji.content  # a zero-width joiner makes one emoji
    # Stored before the check: the feed leaves out what XML cannot carry, and parses.
    claim.current_revision.label = "cars\uffff\ufffe"
    claim.current_revision.save(update_fields=["label"])
    feed = Client().get("/models/inceptionv1/claims.atom")
    assert ElementTree.fromstring(feed.content).find("{*}entry") is not None


def test_a_list_is_made_with_its_first_entry_or_not_at_all(inceptionv1: Model, alice: User) -> None:
    browser = Client()
    browser.force_login(alice)
    for note in ("bad\x01note", "n" * 2001):
        made = browser.post(
            "/lists/new/", {"title": "half", "neuron": "inceptionv1/4c:1", "note": note}
        )
        assert made.status_code == 400 and b"note: " in made.content
    assert not NeuronList.objects.exists()
    chosen = browser.post("/lists/add/", {"list": "abc", "neuron": "inceptionv1/4c:1"})
    assert chosen.status_code == 400 and b"list: " in chosen.content


def test_a_hidden_claim_is_not_edited_from_the_web_and_a_feature_claim_says_why_not(
    claim: Claim, alice: User, staff: User
) -> None:
    browser = Client()
    browser.force_login(alice)
    feature = services.claim_create(
        author=alice, target=resolve("inceptionv1/4c:3"), kind="feature", label="a", argument="b"
    )
    edited = browser.post(
        f"/claims/{feature.pk}/edit/",
        {"based_on": 1, "label": "a", "argument": "b", "expression": "4c:3 = 4b:1"},
    )
    assert edited.status_code == 400 and b"nothing changed" in edited.content
    services.content_hide(moderator=staff, content=claim)
    hidden = browser.post(
        f"/claims/{claim.pk}/edit/", {"based_on": 1, "label": "edited", "argument": "a"}
    )
    assert hidden.status_code == 404
    assert claim.revisions.count() == 1


def test_a_body_past_the_limit_is_a_413_that_says_the_limit(
    claim: Claim, alice: User, staff: User, client_for: Callable[[User], APIClient], settings: Any
) -> None:
    as_alice = client_for(alice)
    post = {"target": "inceptionv1/4c:1", "kind": "feature", "label": "x"}
    big = as_alice.post("/api/v1/claims/", post | {"argument": "a" * 3_000_000}, format="json")
    assert big.status_code == 413
    assert "larger than 2.5 MB" in big.json()["error"]["message"]
    browser = Client()
    browser.force_login(alice)
    form = urlencode({"title": "t", "description": "d" * 3_000_000})
    page = browser.post("/lists/new/", form, content_type="application/x-www-form-urlencoded")
    assert page.status_code == 413 and b"larger than 2.5 MB" in page.content
    assert Claim.objects.count() == 1 and not NeuronList.objects.exists()
    # An import takes more: an export of thousands of claims is larger.
    curator = client_for(staff)
    document = curator.get("/api/v1/export/?model=inceptionv1").json()
    padded = document | {"notes": "n" * 3_000_000}
    imported = curator.post("/api/v1/import/", padded, format="json")
    assert imported.status_code == 200 and imported.json()["claims_skipped"] == 1
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2**20
    refused = curator.post("/api/v1/import/", padded, format="json")
    assert refused.status_code == 413
    assert "larger than 1 MB" in refused.json()["error"]["message"]


def test_a_whole_number_is_ascii_digits_or_a_json_integer(
    claim: Claim, bob: User, mobilenet: Model, client_for: Callable[[User], APIClient]
) -> None:
    as_bob = client_for(bob)
    review = {"verdict": "support", "reason": "ok"}
    for revision in ("\u0661", "1.0", 1.5, True, "+1"):
        response = as_bob.post(
            f"/api/v1/claims/{claim.pk}/reviews/", review | {"revision": revision}, format="json"
        )
        assert response.status_code == 400, revision
        assert "revision" in response.json()["error"]["fields"], revision
    neuron = {"neuron": "mobilenet_v2/f10:3", "kinds": ["featurevis"]}
    for field, value in (("steps", "\u0661\u0662"), ("size", "64.0"), ("steps", 64.5)):
        response = as_bob.post("/api/v1/render-jobs/", neuron | {field: value}, format="json")
        assert response.status_code == 400, (field, value)
        assert field in response.json()["error"]["fields"]
    browser = Client()
    browser.force_login(bob)
    page = browser.post(f"/claims/{claim.pk}/review/", review | {"revision": "\u0661"})
    assert page.status_code == 400
    assert not Review.objects.exists()
    fine = as_bob.post(f"/api/v1/claims/{claim.pk}/reviews/", review | {"revision": "1"})
    assert fine.status_code == 201, fine.content
    whole = as_bob.post("/api/v1/render-jobs/", neuron | {"steps": 8.0}, format="json")
    assert whole.status_code == 202, whole.content  # 8.0 is the number 8, as numpy writes it
    assert RenderJob.objects.get().params["steps"] == 8
    # Web page numbers too: "\u0665" was page 5 (it is no page, as "abc" is).
    for path in ("/claims/", "/jobs/", "/models/inceptionv1/mixed4c/"):
        listed = browser.get(path, {"page": "\u0665"})
        assert listed.status_code == 400 and b"is not a page here" in listed.content, path


def test_one_researcher_cannot_fill_the_gpu_queue(
    mobilenet: Model, bob: User, staff: User, client_for: Callable[[User], APIClient], settings: Any
) -> None:
    settings.MICROSCOPE_JOBS_PER_PERSON = 3
    as_bob, as_staff = client_for(bob), client_for(staff)
    asked = {"kinds": ["featurevis"], "steps": 8, "size": 32}
    for index in range(3):
        queued = as_bob.post(
            "/api/v1/render-jobs/", asked | {"neuron": f"mobilenet_v2/f10:{index}"}, format="json"
        )
        assert queued.status_code == 202, queued.content
    refused = as_bob.post("/api/v1/render-jobs/", asked | {"neuron": "mobilenet_v2/f10:3"})
    assert refused.status_code == 400
    assert "at most 3 of your jobs wait or run" in refused.json()["error"]["fields"]["jobs"][0]
    again = as_bob.post("/api/v1/render-jobs/", asked | {"neuron": "mobilenet_v2/f10:0"})
    assert again.status_code == 202  # the job queued already: joined, not a new one
    browser = Client()
    browser.force_login(bob)
    page = browser.post("/models/mobilenet_v2/features_10/4/render/")
    assert page.status_code == 400 and b"at most 3 of your jobs wait or run" in page.content
    for index in range(4, 8):  # staff ask for any number (as commands do)
        neuron = {"neuron": f"mobilenet_v2/f10:{index}"}
        assert as_staff.post("/api/v1/render-jobs/", asked | neuron).status_code == 202
    assert RenderJob.objects.filter(requested_by=bob).count() == 3


def test_a_page_that_is_no_page_is_a_400_naming_page(inceptionv1: Model, api: APIClient) -> None:
    url = "/api/v1/models/inceptionv1/layers/mixed4c/neurons/"
    for page in ("abc", "0", "99999", "\u0661"):
        response = api.get(url, {"page": page})
        assert response.status_code == 400, page
        assert "a page number from 1 to 6" in response.json()["error"]["fields"]["page"][0]
    assert api.get(url, {"page": "last"}).json()["results"][-1]["index"] == 511
    sized = api.get(url, {"page_size": 500, "page": 2}).json()
    assert len(sized["results"]) == 12 and sized["count"] == 512
    assert api.get(url, {"page_size": 501}).status_code == 400


def test_a_field_a_request_does_not_have_is_a_400_naming_it(
    claim: Claim, alice: User, client_for: Callable[[User], APIClient]
) -> None:
    as_alice = client_for(alice)
    post = {"target": "inceptionv1/4c:1", "kind": "feature", "label": "x", "argument": "y"}
    misspelt = as_alice.post("/api/v1/claims/", post | {"lable": "cars"}, format="json")
    assert misspelt.status_code == 400
    assert "not a field here" in misspelt.json()["error"]["fields"]["lable"][0]
    listed = as_alice.post("/api/v1/lists/", {"title": "t", "colour": "red"}, format="json")
    assert listed.status_code == 400 and "colour" in listed.json()["error"]["fields"]
    # A claim read and sent back whole edits it; its kind or target never change.
    read = as_alice.get(f"/api/v1/claims/{claim.pk}/")
    whole = read.json() | {"label": "cars and trucks"}
    edited = as_alice.put(
        f"/api/v1/claims/{claim.pk}/", whole, format="json", HTTP_IF_MATCH=read["ETag"]
    )
    assert edited.status_code == 200, edited.content
    changes = ({"kind": "feature"}, {"target": "inceptionv1/4c:2"}, {"colour": "red"})
    for change in (*changes, {"status": "supported"}, {"retracted": True}):
        refused = as_alice.patch(
            f"/api/v1/claims/{claim.pk}/", change, format="json", HTTP_IF_MATCH=edited["ETag"]
        )
        assert refused.status_code == 400, change
        assert next(iter(change)) in refused.json()["error"]["fields"]
    claim.refresh_from_db()
    assert (claim.revision_number, claim.kind) == (2, "circuit")


def test_an_import_s_flags_are_json_booleans_and_its_model_a_string(
    claim: Claim, staff: User, client_for: Callable[[User], APIClient]
) -> None:
    curator = client_for(staff)
    document = curator.get("/api/v1/export/?model=inceptionv1").json()
    for path, value in (("claims.0.hidden", "yes"), ("claims.0.hidden", 1), ("model", 12)):
        broken = copy.deepcopy(document)
        *parents, last = path.split(".")
        target = broken
        for part in parents:
            target = target[int(part)] if part.isdigit() else target[part]
        target[last] = value
        response = curator.post("/api/v1/import/", broken, format="json")
        assert response.status_code == 400, (path, value)
        assert path in response.json()["error"]["fields"], response.json()
    assert Claim.objects.get().hidden is False


def test_a_lone_surrogate_anywhere_in_json_is_a_400(
    claim: Claim, alice: User, client_for: Callable[[User], APIClient]
) -> None:
    as_alice = client_for(alice)
    bodies = {
        "/api/v1/lists/": '{"\\ud800": 1}',
        "/api/v1/claims/": '{"kind": "feature\\ud800", "target": "inceptionv1/4c:1"}',
        f"/api/v1/claims/{claim.pk}/reviews/": '{"verdict": "support\\udfff", "reason": "x"}',
        "/api/v1/render-jobs/": '{"neuron": "inceptionv1/4c:1", "kinds": ["featurevis\\ud800"]}',
    }
    for url, body in bodies.items():
        response = as_alice.post(url, body, content_type="application/json")
        assert response.status_code == 400, url
        assert "lone surrogate" in response.json()["error"]["message"]
    pair = as_alice.post(
        "/api/v1/lists/", '{"title": "\\ud83d\\udd2c"}', content_type="application/json"
    )
    assert pair.status_code == 201 and pair.json()["title"] == "\U0001f52c"  # a pair is text


def test_local_usernames_leave_name_at_host_to_other_instances(db: None) -> None:
    signup = Client().post(
        "/accounts/signup/",
        {"username": "alice@lab-b.example", "name": "A", "institution": "",
         "password1": "a long enough passphrase", "password2": "a long enough passphrase"},
    )  # fmt: skip
    assert signup.status_code == 400 and b"a username here has no @" in signup.content
    with pytest.raises(CommandError, match="has no @"):
        call_command("user_create", "bob@lab-b.example")
    assert not User.objects.exists()


def test_the_render_command_and_jobs_keep_the_api_s_bounds(mobilenet: Model) -> None:
    for args, message in (
        (["--steps", "\u0663"], "not a whole number"),
        (["--size", "100000"], "size must be at most 512"),
        (["--steps", "99999999999"], "steps must be at most 4096"),
        (["--seed", "99999999999"], "seed must be at most 2147483647"),
        (["--channels", ""], "bad channel range"),
        (["--steps", "9" * 27], "too large"),
        (["--seed", "-1"], "'-1' is negative"),
        (["--sync", "--wait"], "not allowed with argument --sync"),
    ):
        with pytest.raises(CommandError, match=message):
            call_command("render", "mobilenet_v2", "f2", *args, stdout=io.StringIO())
    assert not RenderJob.objects.exists()


@pytest.mark.parametrize("bad", ["%FF%FE", "%ED%A0%80", "%C0%80", "ok%E2%82"])
def test_text_that_is_not_utf8_is_a_400_naming_its_field_on_pages_and_the_api(
    claim: Claim, alice: User, bad: str, client_for: Callable
) -> None:
    """Django reads bytes that are not UTF-8 as U+FFFD; they are refused, never stored."""
    browser = Client()
    browser.force_login(alice)
    form = "application/x-www-form-urlencoded"
    comment = browser.post(f"/claims/{claim.pk}/comment/", f"body={bad}", content_type=form)
    assert comment.status_code == 400 and b"body: not UTF-8" in comment.content
    boundary = "b0undary"
    multipart = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="title"\r\n\r\n'.encode()
        + bytes.fromhex(bad.replace("%", "").removeprefix("ok"))
        + f"\r\n--{boundary}--\r\n".encode()
    )
    listed = browser.post(
        "/lists/new/", multipart, content_type=f"multipart/form-data; boundary={boundary}"
    )
    assert listed.status_code == 400 and b"title: not UTF-8" in listed.content
    searched = browser.get(f"/search/?q={bad}")
    assert searched.status_code == 400 and b"q: not UTF-8" in searched.content

    api = client_for(alice)
    made = api.post("/api/v1/lists/", f"title={bad}", content_type=form)
    assert made.status_code == 400 and "title" in made.json()["error"]["fields"], made.content
    made = api.post(
        "/api/v1/lists/", multipart, content_type=f"multipart/form-data; boundary={boundary}"
    )
    assert made.status_code == 400 and "title" in made.json()["error"]["fields"], made.content
    queried = api.get(f"/api/v1/claims/?q={bad}")
    assert queried.status_code == 400 and "q" in queried.json()["error"]["fields"]
    assert not Comment.objects.exists() and not NeuronList.objects.exists()
    fine = browser.post(f"/claims/{claim.pk}/comment/", "body=%E2%82%AC+ok", content_type=form)
    assert fine.status_code == 302 and Comment.objects.get().body == "€ ok"


def test_pages_answer_head_as_they_answer_get(claim: Claim) -> None:
    for path in ("/", "/claims/", f"/claims/{claim.pk}/", "/search/?q=car", "/lists/", "/jobs/"):
        head, get = Client().head(path), Client().get(path)
        assert head.status_code == get.status_code == 200, path
        assert head.content == b"" and head["Content-Type"] == get["Content-Type"], path


def test_a_page_number_repeated_parameter_or_search_that_names_nothing_is_a_400(
    claim: Claim, api: APIClient
) -> None:
    browser = Client()
    for path in ("/claims/", "/models/inceptionv1/mixed4c/"):
        for wrong in ("abc", "-1", "0", "1.0", "\u0665", "999"):
            refused = browser.get(path, {"page": wrong})
            assert refused.status_code == 400, (path, wrong)
            assert "is not a page here (1 to " in refused.content.decode(), (path, wrong)
        assert browser.get(path, {"page": "1"}).status_code == 200
    twice = browser.get("/claims/?status=bogus&status=proposed")
    assert twice.status_code == 400 and b"status: given 2 times" in twice.content
    twice = api.get("/api/v1/claims/?kind=feature&kind=circuit")
    assert twice.status_code == 400 and "kind" in twice.json()["error"]["fields"]
    assert browser.get("/jobs/status/?id=1&id=2").status_code == 200  # a list, on purpose
    searched = browser.get("/search/", {"q": "car", "model": "bogus"})
    assert searched.status_code == 400 and "model: " in searched.content.decode()
    searched = browser.get("/search/", {"q": "c" * 201})
    assert searched.status_code == 400 and "q: at most 200 characters" in searched.content.decode()
    assert browser.get("/search/", {"q": "car", "model": "inceptionv1"}).status_code == 200


def test_a_review_of_a_retracted_claim_says_why_it_is_refused(
    claim: Claim, alice: User, bob: User
) -> None:
    services.claim_retract(claim=claim, author=alice)
    browser = Client()
    browser.force_login(bob)
    refused = browser.post(
        f"/claims/{claim.pk}/review/", {"revision": "1", "verdict": "support", "reason": "ok"}
    )
    assert refused.status_code == 400
    assert "this claim is retracted; it is no longer reviewed" in refused.content.decode()
    assert not Review.objects.exists()


def test_a_query_with_a_control_character_or_an_override_is_a_400_not_echoed(
    api: APIClient, db: None
) -> None:
    for text in ("\u202ereversed", "a\x1bb", "\u2067open", "\ufffe"):
        searched = Client().get("/search/", {"q": text})
        assert searched.status_code == 400, text
        assert "q: control characters are not allowed" in searched.content.decode()
        assert text not in searched.content.decode()
        listed = api.get("/api/v1/claims/", {"q": text})
        assert listed.status_code == 400 and "q" in listed.json()["error"]["fields"], text
    assert Client().get("/search/", {"q": "\u05e9\u05dc\u05d5\u05dd car"}).status_code == 200


@pytest.mark.parametrize("broken", ["two\nlines", "a\ttab", "line\u2028separator", "p\u2029p"])
def test_labels_titles_and_names_are_one_line(
    inceptionv1: Model, alice: User, broken: str, client_for: Callable
) -> None:
    with pytest.raises(services.ClaimError, match="a label is one line"):
        services.claim_create(
            author=alice, target=resolve("inceptionv1/4c:1"), kind="feature",
            label=broken, argument="multi-line\narguments are fine",
        )  # fmt: skip
    api = client_for(alice)
    listed = api.post("/api/v1/lists/", {"title": broken})
    assert listed.status_code == 400 and "title" in listed.json()["error"]["fields"]
    browser = Client()
    browser.force_login(alice)
    profile = browser.post("/accounts/profile/", {"name": broken, "institution": ""})
    assert profile.status_code == 400 and b"must be one line" in profile.content
    tokens = ApiToken.objects.count()  # client_for's
    token = browser.post("/account/tokens/", {"name": broken})
    assert token.status_code == 400 and ApiToken.objects.count() == tokens
    assert not Claim.objects.exists() and not NeuronList.objects.exists()


def test_marks_stacked_past_any_script_or_with_nothing_to_sit_on_are_refused(
    inceptionv1: Model, alice: User
) -> None:
    def claim(label: str) -> Claim:
        return services.claim_create(
            author=alice, target=resolve("inceptionv1/4c:1"), kind="feature",
            label=label, argument="x",
        )  # fmt: skip

    with pytest.raises(services.ClaimError, match="199 combining marks on one character"):
        claim("Z" + "\u0336" * 199)
    with pytest.raises(services.ClaimError, match="a label is required"):
        claim("\u0301\u0302\u0303")  # marks on nothing
    assert claim("Vi\u1ec7t ti\u00ea\u0301ng").label  # Vietnamese: two marks, fine
