"""Writes about claims: keyword-only, atomic, validated before anything is saved.

Every refusal is a ``ClaimError`` with the field it is about, a message a person can act on,
and a code an API maps to an HTTP status ("invalid" 400, "forbidden" 403, "stale" 409).
Nothing is stored when one is raised.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import IntegrityError, transaction
from django.utils import timezone

from annotations.apps import EVIDENCE_KIND
from annotations.grammar import Circuit, GrammarError, circuit_read
from annotations.models import (
    Claim,
    ClaimRevision,
    ClaimTerm,
    Comment,
    Evidence,
    Kind,
    Review,
    Role,
    Status,
    Verdict,
)
from jobs.planning import render_job_create
from neurons.models import Neuron
from neurons.validation import control_character, line_break, visible
from render import catalog

User = AbstractBaseUser | AnonymousUser

LABEL_MAX = 200
ARGUMENT_MAX = 20_000
REASON_MAX = 5_000
COMMENT_MAX = 10_000
# What claim_status_refresh sets.
STATUS_FIELDS = ["status", "support_count", "dispute_count", "needs_evidence_count"]


class ClaimError(Exception):
    """A refused write: ``field`` ("expression", "based_on", "reason", ... or "__all__")."""

    INVALID = "invalid"
    FORBIDDEN = "forbidden"
    STALE = "stale"

    def __init__(
        self, field: str, message: str, *, code: str = INVALID, column: int | None = None
    ) -> None:
        super().__init__(message)
        self.field = field
        self.message = message
        self.code = code
        self.column = column

    def as_dict(self) -> dict[str, object]:
        data: dict[str, object] = {"field": self.field, "message": self.message, "code": self.code}
        if self.column is not None:
            data["column"] = self.column
        return data


@dataclass(frozen=True)
class Content:
    label: str
    argument: str
    expression: str
    circuit: Circuit | None


def _signed_in(user: User, field: str, action: str) -> None:
    if user is None or not user.is_authenticated:
        raise ClaimError(field, f"sign in to {action}", code=ClaimError.FORBIDDEN)


def _text(field: str, value: str, *, limit: int, what: str, line: bool = False) -> str:
    """``value``, stripped, or a ClaimError naming ``field``; ``line``: shown on one line."""
    value = (value or "").strip()
    if not visible(value):
        raise ClaimError(field, f"{what} is required")
    if len(value) > limit:
        raise ClaimError(field, f"{what} is {len(value)} characters long; at most {limit}")
    if (control := control_character(value)) is not None:
        raise ClaimError(field, f"{what} may not hold control characters ({control})")
    if line and (found := line_break(value)) is not None:
        raise ClaimError(field, f"{what} is one line (found {found})")
    return value


def _content(*, kind: str, target: Neuron, label: str, argument: str, expression: str) -> Content:
    """Validate a revision's content, in the order of the form's fields."""
    if kind not in Kind.values:
        raise ClaimError("kind", f"kind must be one of {', '.join(Kind.values)}, not {kind!r}")
    circuit = None
    expression = (expression or "").strip()
    if kind == Kind.CIRCUIT:
        try:
            circuit = circuit_read(expression, target=target)
        except GrammarError as exc:
            raise ClaimError("expression", str(exc), column=exc.column) from None
        expression = circuit.canonical
    elif expression:
        raise ClaimError("expression", "a feature claim has no expression; choose 'circuit'")
    return Content(
        label=_text("label", label, limit=LABEL_MAX, what="a label", line=True),
        argument=_text("argument", argument, limit=ARGUMENT_MAX, what="an argument"),
        expression=expression,
        circuit=circuit,
    )


def revision_content(
    *, kind: str, target: Neuron, label: str, argument: str, expression: str
) -> tuple[str, str, str]:
    """A revision's ``(label, argument, expression)`` as they are stored: stripped, the
    expression in its canonical form (``4c:447 = 4b:373 + 4b:237``). Raises ClaimError."""
    content = _content(
        kind=kind, target=target, label=label, argument=argument, expression=expression
    )
    return content.label, content.argument, content.expression


def _revision_add(
    *, claim: Claim, number: int, author: AbstractBaseUser, content: Content, based_on: int | None
) -> ClaimRevision:
    revision = ClaimRevision.objects.create(
        claim=claim,
        number=number,
        label=content.label,
        expression=content.expression,
        argument=content.argument,
        author=author,
        based_on=based_on,
    )
    terms = [ClaimTerm(revision=revision, neuron=claim.target, role=Role.TARGET, position=0)]
    if content.circuit is not None:
        terms += [
            ClaimTerm(
                revision=revision,
                neuron=term.neuron,
                role=Role.COMPONENT,
                coefficient=term.coefficient,
                position=position,
            )
            for position, term in enumerate(content.circuit.terms, start=1)
        ]
    ClaimTerm.objects.bulk_create(terms)
    claim.current_revision = revision
    return revision


@transaction.atomic
def claim_create(
    *,
    author: User,
    target: Neuron,
    kind: str,
    label: str,
    argument: str,
    expression: str = "",
) -> Claim:
    """A claim about ``target`` with its first revision and structured terms."""
    _signed_in(author, "__all__", "post a claim")
    content = _content(
        kind=kind, target=target, label=label, argument=argument, expression=expression
    )
    claim = Claim.objects.create(kind=kind, target=target, author=author)
    revision = _revision_add(claim=claim, number=1, author=author, content=content, based_on=None)
    claim.save(update_fields=["current_revision"])
    evidence_request(revision=revision)
    return claim


def _not_hidden(claim: Claim, what: str) -> None:
    if claim.hidden:
        raise ClaimError("__all__", f"this claim was hidden by a moderator; it takes no {what}")


def _dated(row: Review | Comment, made: datetime | None) -> None:
    """Give a row made elsewhere (an import) its time there: ``created`` is auto_now_add,
    which create() sets whatever it is given."""
    if made is not None:
        type(row).objects.filter(pk=row.pk).update(created=made)
        row.created = made


def _locked(claim: Claim) -> Claim:
    """The claim's row, locked until commit (PostgreSQL), so that edits and reviews queue.

    Locked first, then read: a locking read that waited for another edit sees that edit's
    row but not, through a join, the revision it added (the statement's snapshot is older),
    so the current revision is read by a second statement, which sees it.
    """
    Claim.objects.select_for_update().filter(pk=claim.pk).values_list("pk").first()
    try:
        return Claim.objects.select_related("current_revision", "target__layer__model").get(
            pk=claim.pk
        )
    except Claim.DoesNotExist:
        raise ClaimError("__all__", "this claim no longer exists") from None


def claim_edit_check(*, claim: Claim, author: User) -> None:
    """Whether ``author`` may edit ``claim`` at all (before any precondition is looked at):
    signed in, its author, and the claim not retracted. Raises ClaimError."""
    _signed_in(author, "__all__", "edit a claim")
    if claim.author_id != author.pk:
        raise ClaimError("__all__", "only the author edits a claim", code=ClaimError.FORBIDDEN)
    if claim.retracted:
        raise ClaimError("__all__", "this claim is retracted; it can no longer be edited")


@transaction.atomic
def claim_update(
    *,
    claim: Claim,
    author: User,
    based_on: int,
    label: str,
    argument: str,
    expression: str | None = None,
) -> Claim:
    """A new revision. ``based_on`` is the revision number the editor started from: when
    another revision was posted since, the edit is refused (no lost update). ``expression``
    None keeps the current one.
    """
    claim_edit_check(claim=claim, author=author)
    fresh = _locked(claim)
    claim_edit_check(claim=fresh, author=author)
    current = fresh.current_revision
    if not 1 <= based_on <= current.number:
        raise ClaimError(
            "based_on", f"the claim has revisions 1 to {current.number}, not {based_on}"
        )
    if based_on != current.number:
        raise ClaimError(
            "based_on",
            f"revision {current.number} was saved after revision {based_on}, which your edit "
            "started from; read it and edit again (your text is kept below)",
            code=ClaimError.STALE,
        )
    content = _content(
        kind=fresh.kind,
        target=fresh.target,
        label=label,
        argument=argument,
        expression=current.expression if expression is None else expression,
    )
    if (content.label, content.argument, content.expression) == (
        current.label,
        current.argument,
        current.expression,
    ):
        raise ClaimError("__all__", "nothing changed since revision " + str(current.number))
    try:
        with transaction.atomic():
            revision = _revision_add(
                claim=fresh,
                number=current.number + 1,
                author=author,
                content=content,
                based_on=based_on,
            )
    except IntegrityError:  # SQLite has no row locks: the unique number is the backstop
        raise ClaimError(
            "based_on",
            "another edit was saved at the same moment; read it and edit again",
            code=ClaimError.STALE,
        ) from None
    claim_status_refresh(claim=fresh)  # reviews were of the old revision
    fresh.save(update_fields=["current_revision", *STATUS_FIELDS, "updated"])
    evidence_request(revision=revision)  # the new revision is tested afresh
    claim.refresh_from_db()
    return fresh


@transaction.atomic
def claim_retract(*, claim: Claim, author: User) -> Claim:
    """The author withdraws the claim. It stays visible, marked retracted."""
    _signed_in(author, "__all__", "retract a claim")
    fresh = _locked(claim)
    if fresh.author_id != author.pk:
        raise ClaimError("__all__", "only the author retracts a claim", code=ClaimError.FORBIDDEN)
    if not fresh.retracted:
        fresh.retracted = True
        fresh.retracted_at = timezone.now()
        claim_status_refresh(claim=fresh)
        fresh.save(update_fields=["retracted", "retracted_at", *STATUS_FIELDS, "updated"])
    claim.refresh_from_db()
    return fresh


@transaction.atomic
def claim_review(
    *,
    claim: Claim,
    reviewer: User,
    verdict: str,
    reason: str,
    revision: int | None = None,
    made: datetime | None = None,
) -> Review:
    """The reviewer's verdict on the current revision, with a reason. ``revision`` is the
    number the reviewer read (None: the current one); a review of an outdated revision is
    refused. An earlier review by the same reviewer is kept, no longer current.

    ``made``: a review made at that time on another instance (an import). It is history,
    so it is kept on the revision it names even if the claim was revised, retracted or
    hidden here since; it is the reviewer's current review only if they have none later.
    """
    _signed_in(reviewer, "__all__", "review a claim")
    fresh = _locked(claim)
    if fresh.author_id == reviewer.pk:
        raise ClaimError(
            "__all__", "authors do not review their own claims", code=ClaimError.FORBIDDEN
        )
    if fresh.retracted and made is None:
        raise ClaimError("__all__", "this claim is retracted; it is no longer reviewed")
    if made is None:
        _not_hidden(fresh, "reviews")
    current = fresh.current_revision
    if revision is not None and not 1 <= revision <= current.number:
        raise ClaimError(
            "revision", f"the claim has revisions 1 to {current.number}, not {revision}"
        )
    if revision is not None and revision != current.number and made is None:
        raise ClaimError(
            "revision",
            f"the claim was revised (now revision {current.number}) after revision {revision}, "
            "which you reviewed; read it again",
            code=ClaimError.STALE,
        )
    reviewed = current if revision is None else fresh.revisions.get(number=revision)
    if verdict not in Verdict.values:
        raise ClaimError(
            "verdict", f"verdict must be one of {', '.join(Verdict.values)}, not {verdict!r}"
        )
    reason = _text("reason", reason, limit=REASON_MAX, what="a reason")
    theirs = Review.objects.filter(claim=fresh, reviewer=reviewer)
    latest = made is None or not theirs.filter(created__gt=made).exists()
    try:
        with transaction.atomic():
            if latest:
                theirs.filter(current=True).update(current=False)
            review = Review.objects.create(
                claim=fresh, revision=reviewed, reviewer=reviewer, verdict=verdict,
                reason=reason, current=latest,
            )  # fmt: skip
            _dated(review, made)
    except IntegrityError:  # the same reviewer twice at once, on SQLite
        raise ClaimError(
            "__all__", "your review changed at the same moment; reload and try again"
        ) from None
    claim_status_refresh(claim=fresh)
    fresh.save(update_fields=STATUS_FIELDS)
    return review


@transaction.atomic
def comment_create(
    *, claim: Claim, author: User, body: str, made: datetime | None = None
) -> Comment:
    """``made``: a comment made at that time on another instance (an import), kept even if
    the claim was hidden here since."""
    _signed_in(author, "__all__", "comment")
    fresh = _locked(claim)
    if made is None:
        _not_hidden(fresh, "comments")
    body = _text("body", body, limit=COMMENT_MAX, what="a comment")
    comment = Comment.objects.create(claim=fresh, author=author, body=body)
    _dated(comment, made)
    return comment


@transaction.atomic
def content_hide(
    *, moderator: User, content: Claim | Review | Comment, hidden: bool = True
) -> Claim | Review | Comment:
    """Staff hide abusive content (or show it again); nothing is deleted."""
    if moderator is None or not moderator.is_authenticated or not moderator.is_staff:
        raise ClaimError("__all__", "only staff hide content", code=ClaimError.FORBIDDEN)
    type(content).objects.filter(pk=content.pk).update(hidden=hidden)
    content.hidden = hidden
    if isinstance(content, Review):  # a hidden review no longer counts
        claim = _locked(content.claim)
        claim_status_refresh(claim=claim)
        claim.save(update_fields=STATUS_FIELDS)
    return content


def claim_status_decide(*, retracted: bool, verdicts: Iterable[str]) -> Status:
    """The status rule, in one place.

    - retracted, when the author retracted the claim;
    - else, counting the current, visible reviews of the current revision only:
      disputed when there is at least one dispute and disputes >= supports;
      supported when supports > disputes;
      proposed otherwise (no reviews, or only needs-evidence).
    """
    if retracted:
        return Status.RETRACTED
    verdicts = list(verdicts)
    supports = verdicts.count(Verdict.SUPPORT)
    disputes = verdicts.count(Verdict.DISPUTE)
    if disputes and disputes >= supports:
        return Status.DISPUTED
    if supports > disputes:
        return Status.SUPPORTED
    return Status.PROPOSED


def claim_status_refresh(*, claim: Claim) -> None:
    """Recount the claim's reviews and set its status (the caller saves)."""
    verdicts = list(
        Review.objects.filter(
            claim=claim, revision_id=claim.current_revision_id, current=True, hidden=False
        ).values_list("verdict", flat=True)
    )
    claim.support_count = verdicts.count(Verdict.SUPPORT)
    claim.dispute_count = verdicts.count(Verdict.DISPUTE)
    claim.needs_evidence_count = verdicts.count(Verdict.NEEDS_EVIDENCE)
    claim.status = claim_status_decide(retracted=claim.retracted, verdicts=verdicts)


# Evidence: what the model itself says about a circuit claim -----------------------------

EVIDENCE_SEED = 0
EVIDENCE_REDUCE = "max"  # the target's activation per image: its spatial max, as examples rank


@transaction.atomic
def evidence_request(*, revision: ClaimRevision) -> Evidence | None:
    """Ask a worker to test a circuit claim's revision against the model, once the revision
    is committed. Feature claims get none (None). Where the model's weights are not
    installed, the evidence is stored as unavailable, with the reason, and no job is made.
    """
    claim = revision.claim
    if claim.kind != Kind.CIRCUIT:
        return None
    target = claim.target
    model = target.layer.model
    params = {
        "expression": revision.expression,
        "seed": EVIDENCE_SEED,
        "random_draws": settings.MICROSCOPE_EVIDENCE_DRAWS,
        "reduce": EVIDENCE_REDUCE,
        "weights_sha256": model.weights_sha256,
    }
    if not model.has_weights:
        return Evidence.objects.create(
            revision=revision,
            status=Evidence.Status.UNAVAILABLE,
            params=params,
            error=catalog.missing_message(catalog.get(model.slug)),
            finished=timezone.now(),
        )
    evidence = Evidence.objects.create(revision=revision, params=params)
    evidence.job = render_job_create(
        model=model,
        layer=target.layer,
        kind=EVIDENCE_KIND,
        params={"evidence": evidence.pk},
        channels=range(target.index, target.index + 1),
    )
    evidence.save(update_fields=["job"])
    return evidence


@transaction.atomic
def evidence_recompute(*, claim: Claim, user: User) -> Evidence | None:
    """Anyone signed in may ask again for the current revision's evidence when it failed
    or was never computed (claims older than evidence); otherwise nothing is done (None)."""
    _signed_in(user, "__all__", "ask for evidence")
    fresh = _locked(claim)
    if fresh.kind != Kind.CIRCUIT:
        raise ClaimError("__all__", "only circuit claims are tested against the model")
    latest = Evidence.objects.filter(revision_id=fresh.current_revision_id).first()
    if latest is not None and latest.status != Evidence.Status.FAILED:
        return None
    return evidence_request(revision=fresh.current_revision)


def evidence_start(*, evidence_id: int) -> Evidence | None:
    """A worker takes the evidence up (its job is claimed already); None when it is gone
    or was computed meanwhile."""
    updated = Evidence.objects.filter(
        id=evidence_id,
        status__in=[Evidence.Status.QUEUED, Evidence.Status.RUNNING, Evidence.Status.FAILED],
    ).update(status=Evidence.Status.RUNNING, error="")
    if not updated:
        return None
    return Evidence.objects.select_related("revision__claim__target__layer__model").get(
        id=evidence_id
    )


def evidence_store(
    *, evidence_id: int, params: dict[str, object], result: dict[str, object], verdict: str
) -> None:
    """The worker's result, with everything that made it."""
    Evidence.objects.filter(id=evidence_id).update(
        status=Evidence.Status.DONE,
        params=params,
        result=result,
        verdict=verdict,
        error="",
        finished=timezone.now(),
    )


def evidence_fail(*, evidence_id: int, error: str) -> None:
    Evidence.objects.filter(id=evidence_id).update(
        status=Evidence.Status.FAILED, error=error, finished=timezone.now()
    )
