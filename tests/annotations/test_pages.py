from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import User
from django.test import Client

from annotations.models import Claim, ClaimRevision, Comment, Review, Status
from annotations.services import claim_create, claim_review, claim_update, comment_create
from jobs.models import Artifact, ArtifactKind
from neurons.models import Neuron
from neurons.references import resolve
from tests.annotations.conftest import client_for

CIRCUIT = {
    "target": "inceptionv1/4c:447",
    "kind": "circuit",
    "expression": "4c:447 = 4b:373 + 4b:237",
    "label": "car detector",
    "argument": "Windows **above** wheels.",
}


def test_a_signed_in_researcher_posts_a_claim_from_the_neuron_page(
    author: User, target: Neuron
) -> None:
    client = client_for(author)
    page = client.get("/models/inceptionv1/mixed4c/447/").content.decode()
    assert 'id="claim-form"' in page and 'data-target="inceptionv1/4c:447"' in page
    assert 'value="4c:447 = "' in page
    response = client.post("/claims/new/", CIRCUIT)
    claim = Claim.objects.get()
    assert response.status_code == 302 and response.url == f"/claims/{claim.pk}/"
    assert claim.author == author and claim.target == target


def test_a_bad_expression_is_a_400_that_keeps_the_input_and_stores_nothing(
    author: User, target: Neuron
) -> None:
    response = client_for(author).post(
        "/claims/new/", CIRCUIT | {"expression": "4c:447 = 4b:373 + 4d:1"}
    )
    assert response.status_code == 400
    content = response.content.decode()
    assert "column 19: 4d:1 is in mixed4d, which is not below" in content
    assert 'value="4c:447 = 4b:373 + 4d:1"' in content
    assert "Windows **above** wheels." in content
    assert not Claim.objects.exists()


def test_the_preview_returns_the_parsed_terms(target: Neuron, client: Client) -> None:
    response = client.get(
        "/claims/preview/",
        {"target": "inceptionv1/4c:447", "expression": "mixed4c:447 = 0.8*4b:373 - 4b:12"},
    )
    assert response.status_code == 200
    data = response.json()
    assert data["ok"] and data["canonical"] == "4c:447 = 0.8*4b:373 - 4b:12"
    assert data["target"]["url"] == "/models/inceptionv1/mixed4c/447/"
    assert [(t["short_ref"], t["coefficient"]) for t in data["terms"]] == [
        ("4b:373", 0.8),
        ("4b:12", -1.0),
    ]


@pytest.mark.parametrize(
    ("params", "field", "column", "message"),
    [
        ({"expression": "4c:447 = 4b:373 +"}, "expression", 18, "expected a neuron reference"),
        ({"expression": "4c:447 = 4b:600"}, "expression", 10, "which has 512 channels"),
        ({"expression": "4c:447 = 4b:1", "target": "inceptionv1/4c:9999"}, "target", None, ""),
    ],
)
def test_the_preview_returns_the_error_with_its_column(
    target: Neuron, client: Client, params: dict, field: str, column: int | None, message: str
) -> None:
    response = client.get("/claims/preview/", {"target": "inceptionv1/4c:447"} | params)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["field"] == field and error.get("column") == column
    assert message in error["message"]


def test_the_neuron_page_shows_claims_about_it_and_claims_that_use_it(
    claim: Claim, colleague: User, client: Client
) -> None:
    claim_review(claim=claim, reviewer=colleague, verdict="support", reason="yes")
    about = client.get("/models/inceptionv1/mixed4c/447/").content.decode()
    assert 'id="claims-about"' in about and "car detector from windows and wheels" in about
    assert "1 support · 0 dispute · 0 needs evidence" in about
    assert 'class="status status-supported"' in about
    used = client.get("/models/inceptionv1/mixed4b/373/").content.decode()
    assert 'id="claims-uses"' in used and f'href="/claims/{claim.pk}/"' in used
    unrelated = client.get("/models/inceptionv1/mixed4b/374/").content.decode()
    assert f'href="/claims/{claim.pk}/"' not in unrelated
    assert "sign up</a> to post a claim" in unrelated and 'id="claim-form"' not in unrelated


def test_the_claim_page_draws_the_expression_and_shows_reviews_history_and_comments(
    claim: Claim, author: User, colleague: User, client: Client
) -> None:
    claim_review(claim=claim, reviewer=colleague, verdict="dispute", reason="see 4b:12")
    claim_update(
        claim=claim,
        author=author,
        based_on=1,
        label="car detector",
        argument="Windows above wheels.\n\n<script>alert(1)</script>",
        expression="4c:447 = 4b:373 + 0.5*4b:237",
    )
    comment_create(claim=claim, author=colleague, body="What about **4a:10**?")
    response = client.get(f"/claims/{claim.pk}/")
    content = response.content.decode()
    assert response.status_code == 200
    expression = content[
        content.index('id="expression"') : content.index("</div>", content.index('id="expression"'))
    ]
    for url in ("mixed4c/447", "mixed4b/373", "mixed4b/237"):
        assert f'href="/models/inceptionv1/{url}/"' in expression
    assert "0.5 \N{MULTIPLICATION SIGN}" in expression
    assert "<script>alert(1)" not in content
    assert "Dispute</span>" in content and "no longer counts" in content
    assert 'href="/models/inceptionv1/mixed4b/12/"' in content  # reference in a review
    assert 'href="/models/inceptionv1/mixed4a/10/"' in content  # reference in a comment
    assert 'id="revision-2"' in content and "based on revision 1" in content
    assert '<span class="remove">- label: car detector from windows and wheels</span>' in content
    assert '<span class="add">+ label: car detector</span>' in content
    assert f'rel="canonical" href="http://testserver/claims/{claim.pk}/"' in content


def test_pages_take_a_bounded_number_of_queries(
    claim: Claim,
    author: User,
    colleague: User,
    third: User,
    target: Neuron,
    django_assert_max_num_queries,
) -> None:
    for number in range(2, 6):
        claim_update(
            claim=claim, author=author, based_on=number - 1, label=f"v{number}", argument="a"
        )
    for reviewer in (colleague, third):
        claim_review(claim=claim, reviewer=reviewer, verdict="support", reason="4b:1 4b:2")
        comment_create(claim=claim, author=reviewer, body="4a:1 and 4a:2")
    for index in range(30):
        claim_create(author=author, target=target, kind="feature", label=f"f{index}", argument="x")
    client = client_for(colleague)
    for url, bound in (
        (f"/claims/{claim.pk}/", 16),
        ("/claims/", 16),
        ("/claims/?neuron=inceptionv1/4c:447&status=supported&q=v5", 16),
        # 16 and its label, its lists, your lists and the citation's picture.
        ("/models/inceptionv1/mixed4c/447/", 20),
        ("/people/ada/", 16),
    ):
        with django_assert_max_num_queries(bound):
            assert client.get(url).status_code == 200


# Permissions: author, colleague, stranger (anonymous) ----------------------------------


def _writes(claim: Claim) -> dict[str, dict[str, str]]:
    return {
        "/claims/new/": CIRCUIT,
        f"/claims/{claim.pk}/edit/": {"based_on": "1", "label": "x", "argument": "y"},
        f"/claims/{claim.pk}/retract/": {},
        f"/claims/{claim.pk}/review/": {"revision": "1", "verdict": "support", "reason": "r"},
        f"/claims/{claim.pk}/comment/": {"body": "hello"},
        f"/claims/{claim.pk}/hide/": {"hidden": "on"},
    }


def _snapshot() -> tuple[int, ...]:
    return (
        Claim.objects.count(),
        ClaimRevision.objects.count(),
        Review.objects.count(),
        Comment.objects.count(),
        Claim.objects.filter(retracted=True).count(),
        Claim.objects.filter(hidden=True).count(),
    )


def test_a_stranger_reads_everything_and_writes_nothing(claim: Claim, client: Client) -> None:
    assert client.get(f"/claims/{claim.pk}/").status_code == 200
    assert client.get("/claims/").status_code == 200
    before = _snapshot()
    for url, data in _writes(claim).items():
        response = client.post(url, data)
        assert response.status_code == 302 and response.url.startswith("/accounts/login/"), url
    assert client.get(f"/claims/{claim.pk}/edit/").status_code == 302
    assert _snapshot() == before


def test_a_colleague_reviews_and_comments_but_does_not_edit_retract_or_hide(
    claim: Claim, colleague: User
) -> None:
    client = client_for(colleague)
    page = client.get(f"/claims/{claim.pk}/").content.decode()
    assert 'id="review-form"' in page and "/edit/" not in page and "Retract" not in page
    assert client.get(f"/claims/{claim.pk}/edit/").status_code == 403
    writes = _writes(claim)
    for url in (f"/claims/{claim.pk}/edit/", f"/claims/{claim.pk}/retract/"):
        response = client.post(url, writes[url])
        assert response.status_code == 403
        assert "only the author" in response.content.decode()
    assert client.post(f"/claims/{claim.pk}/hide/", {"hidden": "on"}).status_code == 403
    assert (
        client.post(
            f"/claims/{claim.pk}/review/", writes[f"/claims/{claim.pk}/review/"]
        ).status_code
        == 302
    )
    assert client.post(f"/claims/{claim.pk}/comment/", {"body": "hello"}).status_code == 302
    claim.refresh_from_db()
    assert claim.status == Status.SUPPORTED and not claim.retracted and not claim.hidden
    assert claim.revisions.count() == 1 and claim.comments.count() == 1


def test_the_author_edits_and_retracts_but_does_not_review(claim: Claim, author: User) -> None:
    client = client_for(author)
    page = client.get(f"/claims/{claim.pk}/").content.decode()
    assert f'href="/claims/{claim.pk}/edit/"' in page and 'id="review-form"' not in page
    response = client.post(
        f"/claims/{claim.pk}/review/", {"revision": "1", "verdict": "support", "reason": "me"}
    )
    assert response.status_code == 403 and not Review.objects.exists()
    edit = client.get(f"/claims/{claim.pk}/edit/").content.decode()
    assert 'name="based_on" value="1"' in edit
    response = client.post(
        f"/claims/{claim.pk}/edit/",
        {"based_on": "1", "label": "v2", "argument": "b", "expression": "4c:447 = 4b:373"},
    )
    assert response.status_code == 302
    assert client.post(f"/claims/{claim.pk}/retract/").status_code == 302
    claim.refresh_from_db()
    assert claim.label == "v2" and claim.retracted and claim.status == Status.RETRACTED
    page = client.get(f"/claims/{claim.pk}/").content.decode()
    assert 'id="retracted"' in page and "v2" in page


def test_a_stale_edit_form_is_refused_and_keeps_the_editors_text(
    claim: Claim, author: User
) -> None:
    client = client_for(author)
    first = {"based_on": "1", "label": "tab one", "argument": "one", "expression": "4c:447 = 4b:1"}
    second = {"based_on": "1", "label": "tab two", "argument": "two", "expression": "4c:447 = 4b:2"}
    assert client.post(f"/claims/{claim.pk}/edit/", first).status_code == 302
    response = client.post(f"/claims/{claim.pk}/edit/", second)
    assert response.status_code == 400
    content = response.content.decode()
    assert "revision 2 was saved after revision 1" in content
    assert 'value="tab two"' in content and 'id="newer-revision"' in content
    assert 'name="based_on" value="2"' in content  # saving again is now deliberate
    claim.refresh_from_db()
    assert claim.label == "tab one" and claim.revisions.count() == 2


def test_staff_hide_a_claim_and_others_see_only_that_it_was_hidden(
    claim: Claim, staff: User, colleague: User
) -> None:
    assert client_for(staff).post(f"/claims/{claim.pk}/hide/", {"hidden": "on"}).status_code == 302
    page = client_for(colleague).get(f"/claims/{claim.pk}/").content.decode()
    assert "hidden by a moderator" in page and "Windows (" not in page
    assert "Windows (" in client_for(staff).get(f"/claims/{claim.pk}/").content.decode()
    assert Claim.objects.filter(pk=claim.pk).exists()


def test_a_hidden_claim_takes_no_review_or_comment_from_the_forms(
    claim: Claim, staff: User, colleague: User
) -> None:
    client_for(staff).post(f"/claims/{claim.pk}/hide/", {"hidden": "on"})
    counts = Claim.objects.values_list("support_count", "dispute_count").get(pk=claim.pk)
    review = {"revision": "1", "verdict": "support", "reason": "looks right"}
    member = client_for(colleague)
    assert member.post(f"/claims/{claim.pk}/review/", review).status_code == 404
    assert member.post(f"/claims/{claim.pk}/comment/", {"body": "hi"}).status_code == 404
    moderator = client_for(staff)
    refused = moderator.post(f"/claims/{claim.pk}/review/", review)
    assert refused.status_code == 400 and "hidden by a moderator" in refused.content.decode()
    assert moderator.post(f"/claims/{claim.pk}/comment/", {"body": "hi"}).status_code == 400
    assert not Review.objects.exists() and not claim.comments.exists()
    assert Claim.objects.values_list("support_count", "dispute_count").get(pk=claim.pk) == counts


def test_every_write_needs_the_csrf_token(claim: Claim, colleague: User) -> None:
    client = client_for(colleague, csrf=True)
    before = _snapshot()
    for url, data in _writes(claim).items():
        assert client.post(url, data).status_code == 403, url
    assert _snapshot() == before
    page = client.get(f"/claims/{claim.pk}/").content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    response = client.post(
        f"/claims/{claim.pk}/review/",
        {"revision": "1", "verdict": "support", "reason": "r", "csrfmiddlewaretoken": token},
    )
    assert response.status_code == 302 and Review.objects.count() == 1


# The list ---------------------------------------------------------------------------------


def test_the_list_filters_by_model_status_author_and_neuron(
    claim: Claim, author: User, colleague: User, mobilenet, client: Client
) -> None:
    other = claim_create(
        author=colleague,
        target=resolve("mobilenet_v2/features_2:0"),
        kind="feature",
        label="stripes",
        argument="Stripes.",
    )
    claim_review(claim=claim, reviewer=colleague, verdict="support", reason="ok")

    def found(query: str) -> set[int]:
        response = client.get("/claims/?" + query)
        assert response.status_code == 200, response.content
        return {c.pk for c in response.context["page"]}

    assert found("") == {claim.pk, other.pk}
    assert found("model=mobilenet_v2") == {other.pk}
    assert found("status=supported") == {claim.pk}
    assert found("author=cole") == {other.pk}
    assert found("neuron=inceptionv1/4b:237") == {claim.pk}
    assert found("neuron=4b:237&model=inceptionv1") == {claim.pk}
    assert found("q=wheels") == {claim.pk}
    assert found("q=stripes&model=inceptionv1") == set()


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("status=true", "unknown status"),
        ("author=nobody", "nobody is called"),
        ("neuron=inceptionv1/4b:999", "which has 512 channels"),
    ],
)
def test_a_bad_filter_says_what_is_wrong(
    claim: Claim, client: Client, query: str, message: str
) -> None:
    response = client.get("/claims/?" + query)
    assert response.status_code == 400
    assert message in response.content.decode()


def test_feature_visualizations_are_the_thumbnails_of_expressions_and_references(
    claim: Claim, client: Client
) -> None:
    windows = resolve("inceptionv1/4b:373")
    Artifact.objects.create(
        kind=ArtifactKind.FEATUREVIS,
        layer=windows.layer,
        neuron=windows,
        key="k" * 64,
        files=["featurevis/4b-373.png"],
    )
    thumbnail = "/media/featurevis/4b-373.png"
    content = client.get(f"/claims/{claim.pk}/").content.decode()
    expression = content[content.index('id="expression"') :]
    assert f'<img src="{thumbnail}" alt="feature visualization of inceptionv1/4b:373"' in (
        expression
    )
    assert re.search(f'<img [^>]*class="thumb"[^>]*src="{thumbnail}"', content)  # in the argument
    preview = client.get(
        "/claims/preview/",
        {"target": "inceptionv1/4c:447", "expression": "4c:447 = 4b:373 + 4b:237"},
    ).json()
    assert [term["thumbnail"] for term in preview["terms"]] == [thumbnail, None]


def test_a_feature_claim_ignores_the_expression_box_s_start_but_refuses_terms(
    author: User, target: Neuron
) -> None:
    refused = client_for(author).post(
        "/claims/new/",
        CIRCUIT | {"kind": "feature", "expression": "4c:447 = 4b:373", "label": "car detector"},
    )
    assert refused.status_code == 400 and b"a feature claim has no expression" in refused.content
    assert not Claim.objects.exists()
    response = client_for(author).post(
        "/claims/new/",
        CIRCUIT | {"kind": "feature", "expression": "4c:447 = ", "label": "car detector"},
    )
    assert response.status_code == 302
    claim = Claim.objects.get()
    assert claim.kind == "feature" and claim.current_revision.expression == ""
    assert [t.role for t in claim.current_revision.terms.all()] == ["target"]


def test_a_review_of_an_outdated_revision_is_refused_and_the_form_moves_on(
    claim: Claim, author: User, colleague: User
) -> None:
    claim_update(claim=claim, author=author, based_on=1, label="v2", argument="changed")
    client = client_for(colleague)
    response = client.post(
        f"/claims/{claim.pk}/review/", {"revision": "1", "verdict": "support", "reason": "ok"}
    )
    assert response.status_code == 400
    content = response.content.decode()
    assert "the claim was revised (now revision 2)" in content
    assert 'name="revision" value="2"' in content and ">\nok</textarea>" in content
    assert not Review.objects.exists()
