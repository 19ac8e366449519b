from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser, User

from annotations import selectors
from annotations.models import Claim, ClaimRevision, ClaimTerm, Review, Role, Status
from annotations.services import (
    ClaimError,
    claim_create,
    claim_retract,
    claim_review,
    claim_status_decide,
    claim_update,
    comment_create,
    content_hide,
)
from neurons.models import Neuron
from neurons.references import resolve


def test_a_circuit_claim_is_stored_with_its_structured_terms(claim: Claim) -> None:
    revision = claim.current_revision
    assert (revision.number, revision.expression) == (1, "4c:447 = 4b:373 + 4b:237")
    terms = [(t.neuron.ref, t.role, t.coefficient) for t in revision.terms.order_by("position")]
    assert terms == [
        ("inceptionv1/4c:447", Role.TARGET, 1.0),
        ("inceptionv1/4b:373", Role.COMPONENT, 1.0),
        ("inceptionv1/4b:237", Role.COMPONENT, 1.0),
    ]
    assert claim.status == Status.PROPOSED


def test_every_claim_involving_a_neuron_is_one_query(
    claim: Claim, author: User, target: Neuron, django_assert_num_queries
) -> None:
    component = resolve("inceptionv1/4b:373")
    feature = claim_create(
        author=author, target=component, kind="feature", label="windows", argument="Windows."
    )
    claim_create(
        author=author, target=target, kind="feature", label="cars", argument="Cars, side view."
    )
    with django_assert_num_queries(1):
        involving = list(selectors.claim_list(neuron=component))
    assert {c.pk for c in involving} == {claim.pk, feature.pk}


def test_nothing_is_stored_when_the_expression_is_bad(author: User, target: Neuron) -> None:
    with pytest.raises(ClaimError) as caught:
        claim_create(
            author=author,
            target=target,
            kind="circuit",
            label="x",
            argument="y",
            expression="4c:447 = 4b:373 + 4z:1",
        )
    assert caught.value.field == "expression"
    assert caught.value.column == 19
    assert caught.value.as_dict()["code"] == "invalid"
    assert not Claim.objects.exists() and not ClaimRevision.objects.exists()
    assert not ClaimTerm.objects.exists()


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"label": "  "}, "label"),
        ({"argument": ""}, "argument"),
        ({"label": "x" * 201}, "label"),
        ({"kind": "hunch"}, "kind"),
        ({"kind": "feature", "expression": "4c:447 = 4b:1"}, "expression"),
    ],
)
def test_a_claim_needs_a_label_an_argument_and_a_known_kind(
    author: User, target: Neuron, changes: dict[str, str], field: str
) -> None:
    values = {"kind": "circuit", "label": "l", "argument": "a", "expression": "4c:447 = 4b:1"}
    with pytest.raises(ClaimError) as caught:
        claim_create(author=author, target=target, **(values | changes))
    assert caught.value.field == field
    assert not Claim.objects.exists()


def test_anonymous_people_cannot_post(target: Neuron) -> None:
    with pytest.raises(ClaimError) as caught:
        claim_create(author=AnonymousUser(), target=target, kind="feature", label="l", argument="a")
    assert caught.value.code == ClaimError.FORBIDDEN


def test_an_edit_adds_a_revision_and_keeps_the_old_one(claim: Claim, author: User) -> None:
    claim_update(
        claim=claim,
        author=author,
        based_on=1,
        label="car detector",
        argument="Windows above wheels, and 4b:12 inhibits.",
        expression="4c:447 = 4b:373 + 4b:237 - 0.5*4b:12",
    )
    claim.refresh_from_db()
    assert claim.current_revision.number == 2
    assert claim.current_revision.based_on == 1
    old, new = claim.revisions.order_by("number")
    assert old.expression == "4c:447 = 4b:373 + 4b:237" and old.terms.count() == 3
    assert new.expression == "4c:447 = 4b:373 + 4b:237 - 0.5*4b:12" and new.terms.count() == 4
    # Involvement follows the current revision.
    assert claim in selectors.claim_list(neuron=resolve("inceptionv1/4b:12"))
    diff = selectors.revision_diff(old=old, new=new)
    assert ("remove", "label: car detector from windows and wheels") in [
        (line.kind, line.text) for line in diff
    ]
    assert ("add", "expression: 4c:447 = 4b:373 + 4b:237 - 0.5*4b:12") in [
        (line.kind, line.text) for line in diff
    ]


def test_a_stale_edit_is_refused_so_no_update_is_lost(claim: Claim, author: User) -> None:
    first = {"label": "first editor", "argument": "a", "expression": "4c:447 = 4b:1"}
    second = {"label": "second editor", "argument": "b", "expression": "4c:447 = 4b:2"}
    claim_update(claim=claim, author=author, based_on=1, **first)
    with pytest.raises(ClaimError) as caught:
        claim_update(claim=claim, author=author, based_on=1, **second)
    assert caught.value.code == ClaimError.STALE
    assert caught.value.field == "based_on"
    assert "revision 2 was saved after revision 1" in caught.value.message
    assert claim.revisions.count() == 2
    claim.refresh_from_db()
    assert claim.label == "first editor"


def test_an_edit_that_changes_nothing_is_refused(claim: Claim, author: User) -> None:
    revision = claim.current_revision
    with pytest.raises(ClaimError, match="nothing changed"):
        claim_update(
            claim=claim,
            author=author,
            based_on=1,
            label=revision.label,
            argument=revision.argument,
            expression="mixed4c:447 = mixed4b:373 + mixed4b:237",  # the same, spelt otherwise
        )


def test_only_the_author_edits_or_retracts(claim: Claim, colleague: User) -> None:
    for attempt in (
        lambda: claim_update(claim=claim, author=colleague, based_on=1, label="l", argument="a"),
        lambda: claim_retract(claim=claim, author=colleague),
    ):
        with pytest.raises(ClaimError) as caught:
            attempt()
        assert caught.value.code == ClaimError.FORBIDDEN
    claim.refresh_from_db()
    assert claim.revisions.count() == 1 and not claim.retracted


def test_a_retracted_claim_stays_marked_and_takes_no_more_edits_or_reviews(
    claim: Claim, author: User, colleague: User
) -> None:
    claim_review(claim=claim, reviewer=colleague, verdict="support", reason="checked")
    claim_retract(claim=claim, author=author)
    claim.refresh_from_db()
    assert claim.retracted and claim.status == Status.RETRACTED and claim.retracted_at
    assert claim in selectors.claim_list()
    with pytest.raises(ClaimError, match="retracted"):
        claim_update(claim=claim, author=author, based_on=1, label="l", argument="a")
    with pytest.raises(ClaimError, match="retracted"):
        claim_review(claim=claim, reviewer=colleague, verdict="dispute", reason="no")


@pytest.mark.parametrize(
    ("retracted", "verdicts", "status"),
    [
        (False, [], Status.PROPOSED),
        (False, ["needs_evidence", "needs_evidence"], Status.PROPOSED),
        (False, ["support"], Status.SUPPORTED),
        (False, ["support", "support", "dispute"], Status.SUPPORTED),
        (False, ["support", "dispute"], Status.DISPUTED),
        (False, ["dispute", "needs_evidence"], Status.DISPUTED),
        (False, ["support", "support", "dispute", "dispute", "needs_evidence"], Status.DISPUTED),
        (True, ["support", "support"], Status.RETRACTED),
        (True, [], Status.RETRACTED),
    ],
)
def test_the_status_rule(retracted: bool, verdicts: list[str], status: Status) -> None:
    assert claim_status_decide(retracted=retracted, verdicts=verdicts) == status


def test_reviews_move_the_status_and_a_changed_review_keeps_the_old_one(
    claim: Claim, colleague: User, third: User
) -> None:
    claim_review(claim=claim, reviewer=colleague, verdict="support", reason="replicated")
    claim.refresh_from_db()
    assert (claim.status, claim.support_count) == (Status.SUPPORTED, 1)
    claim_review(claim=claim, reviewer=third, verdict="dispute", reason="4b:237 is not wheels")
    claim.refresh_from_db()
    assert (claim.status, claim.support_count, claim.dispute_count) == (Status.DISPUTED, 1, 1)
    claim_review(claim=claim, reviewer=third, verdict="support", reason="I was wrong")
    claim.refresh_from_db()
    assert (claim.status, claim.support_count, claim.dispute_count) == (Status.SUPPORTED, 2, 0)
    mine = Review.objects.filter(claim=claim, reviewer=third).order_by("created", "id")
    assert [(r.verdict, r.current) for r in mine] == [("dispute", False), ("support", True)]


def test_an_edit_resets_the_count_to_reviews_of_the_new_revision(
    claim: Claim, author: User, colleague: User
) -> None:
    claim_review(claim=claim, reviewer=colleague, verdict="support", reason="ok", revision=1)
    claim_update(claim=claim, author=author, based_on=1, label="new", argument="new")
    claim.refresh_from_db()
    assert (claim.status, claim.support_count) == (Status.PROPOSED, 0)
    with pytest.raises(ClaimError) as caught:  # the reviewer read revision 1
        claim_review(claim=claim, reviewer=colleague, verdict="support", reason="ok", revision=1)
    assert caught.value.code == ClaimError.STALE
    claim_review(claim=claim, reviewer=colleague, verdict="support", reason="still", revision=2)
    claim.refresh_from_db()
    assert claim.status == Status.SUPPORTED


def test_authors_do_not_review_their_own_claims_and_reviews_need_a_reason(
    claim: Claim, author: User, colleague: User
) -> None:
    with pytest.raises(ClaimError) as caught:
        claim_review(claim=claim, reviewer=author, verdict="support", reason="mine is right")
    assert caught.value.code == ClaimError.FORBIDDEN
    with pytest.raises(ClaimError) as caught:
        claim_review(claim=claim, reviewer=colleague, verdict="support", reason="  ")
    assert caught.value.field == "reason"
    with pytest.raises(ClaimError) as caught:
        claim_review(claim=claim, reviewer=colleague, verdict="love", reason="x")
    assert caught.value.field == "verdict"
    assert not Review.objects.exists()


def test_staff_hide_content_without_deleting_it_and_hidden_reviews_do_not_count(
    claim: Claim, colleague: User, staff: User
) -> None:
    review = claim_review(claim=claim, reviewer=colleague, verdict="support", reason="spam")
    comment = comment_create(claim=claim, author=colleague, body="spam")
    with pytest.raises(ClaimError) as caught:
        content_hide(moderator=colleague, content=comment)
    assert caught.value.code == ClaimError.FORBIDDEN
    content_hide(moderator=staff, content=review)
    content_hide(moderator=staff, content=comment)
    content_hide(moderator=staff, content=claim)
    claim.refresh_from_db()
    review.refresh_from_db()
    comment.refresh_from_db()
    assert claim.hidden and review.hidden and comment.hidden
    assert (claim.status, claim.support_count) == (Status.PROPOSED, 0)
    assert claim not in selectors.claim_list(viewer=colleague)
    assert claim in selectors.claim_list(viewer=staff)
    content_hide(moderator=staff, content=review, hidden=False)
    claim.refresh_from_db()
    assert claim.status == Status.SUPPORTED


def test_search_finds_labels_and_arguments(claim: Claim, author: User, target: Neuron) -> None:
    claim_create(
        author=author, target=target, kind="feature", label="dog snouts", argument="Snouts."
    )
    assert [c.pk for c in selectors.claim_list(search="windows")] == [claim.pk]
    assert [c.label for c in selectors.claim_list(search="snouts")] == ["dog snouts"]
    assert list(selectors.claim_list(search="zebra")) == []
