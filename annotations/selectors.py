"""Reads about claims. Lists are querysets with what their pages show already joined."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import connection
from django.db.models import Case, F, Prefetch, Q, QuerySet, Value, When
from django.http import Http404
from django.urls import reverse

from annotations.models import (
    Claim,
    ClaimRevision,
    ClaimTerm,
    Comment,
    Evidence,
    Kind,
    Review,
    Status,
)
from neurons.labels import Label
from neurons.models import Neuron

User = AbstractBaseUser | AnonymousUser | None


def is_staff(viewer: User) -> bool:
    """Staff see hidden claims, reviews and comments (marked hidden); nobody else does."""
    return bool(viewer is not None and viewer.is_authenticated and viewer.is_staff)


def _visible(items: QuerySet, viewer: User, *, placeholders: bool = False) -> QuerySet:
    """``items`` as ``viewer`` may see them: hidden ones only for staff, or, with
    ``placeholders``, marked ``shown=False`` so that a page can say something was hidden
    in its place."""
    if is_staff(viewer):
        return items.annotate(shown=Value(True))
    if placeholders:
        return items.annotate(shown=Q(hidden=False))
    return items.filter(hidden=False).annotate(shown=Value(True))


def claim_list(
    *,
    viewer: User = None,
    model: str | None = None,
    status: str | None = None,
    author: AbstractBaseUser | None = None,
    neuron: Neuron | None = None,
    search: str | None = None,
) -> QuerySet[Claim]:
    """Claims, newest first; hidden ones only for staff. ``neuron``: claims whose current
    revision involves it, as target or component. ``search``: labels and arguments
    (PostgreSQL full-text search; a plain substring match elsewhere).
    """
    claims = Claim.objects.select_related(
        "target__layer__model", "author__profile", "current_revision"
    )
    claims = _visible(claims, viewer)
    if model:
        claims = claims.filter(target__layer__model__slug=model)
    if status:
        claims = claims.filter(status=status)
    if author is not None:
        claims = claims.filter(author=author)
    if neuron is not None:
        claims = claims_involving(claims, neuron=neuron)
    if search:
        claims = claims_search(claims, search)
    return claims


def claims_involving(claims: QuerySet[Claim], *, neuron: Neuron) -> QuerySet[Claim]:
    """Those whose current revision involves ``neuron``, as target or component."""
    return claims.filter(
        current_revision__in=ClaimTerm.objects.filter(neuron=neuron).values("revision")
    )


def claims_search(claims: QuerySet[Claim], text: str) -> QuerySet[Claim]:
    """Those whose label or argument has the words (PostgreSQL full-text search, ranked;
    a plain substring match elsewhere). Blank text filters nothing."""
    text = text.strip()
    if not text:
        return claims
    if connection.vendor == "postgresql":
        # Imported here: django.contrib.postgres is only for PostgreSQL.
        from django.contrib.postgres.search import SearchQuery, SearchRank

        document = F("current_revision__search_document")  # stored, GIN-indexed (0006)
        query = SearchQuery(text, search_type="websearch", config="english")
        # An inner join to the revision lets PostgreSQL use the index; through a LEFT JOIN
        # it reads every revision.
        claims = claims.filter(current_revision__isnull=False)
        return (
            claims.annotate(rank=SearchRank(document, query))
            .filter(current_revision__search_document=query)
            .order_by("-rank", "-created", "-id")
        )
    return claims.filter(
        Q(current_revision__label__icontains=text) | Q(current_revision__argument__icontains=text)
    )


def claim_get(*, pk: int, viewer: User = None) -> Claim:
    """One claim with what its page shows. Hidden claims are found too (the page says so)."""
    terms = ClaimTerm.objects.select_related("neuron__layer__model").order_by("position")
    try:
        return (
            Claim.objects.select_related(
                "target__layer__model", "author__profile", "current_revision"
            )
            .prefetch_related(Prefetch("current_revision__terms", queryset=terms))
            .get(pk=pk)
        )
    except Claim.DoesNotExist:
        raise Http404(f"there is no claim {pk}") from None


def revision_list(*, claim: Claim) -> QuerySet[ClaimRevision]:
    return claim.revisions.select_related("author__profile").order_by("number")


def claim_visible_get(*, pk: int, viewer: User) -> Claim:
    """A claim as the API and the forms that write to it see it: hidden ones only for staff."""
    claim = claim_get(pk=pk, viewer=viewer)
    if claim.hidden and not is_staff(viewer):
        raise Http404(f"there is no claim {pk}")
    return claim


def review_list(
    *,
    viewer: User,
    claim: Claim | None = None,
    reviewer: AbstractBaseUser | None = None,
    placeholders: bool = False,
) -> QuerySet[Review]:
    """Reviews, newest first, current and earlier ones; hidden ones only for staff (see
    :func:`_visible` for ``placeholders``), and by ``reviewer`` only on claims the viewer
    may see."""
    reviews = Review.objects.select_related(
        "reviewer__profile", "revision", "claim__target__layer__model", "claim__current_revision"
    )
    if claim is not None:
        reviews = reviews.filter(claim=claim)
    if reviewer is not None:
        reviews = reviews.filter(reviewer=reviewer)
        if not is_staff(viewer):
            reviews = reviews.filter(claim__hidden=False)
    return _visible(reviews, viewer, placeholders=placeholders)


def comment_list(*, claim: Claim, viewer: User, placeholders: bool = False) -> QuerySet[Comment]:
    """A claim's comments, oldest first; hidden ones only for staff (see :func:`_visible`)."""
    comments = claim.comments.select_related("author__profile")
    return _visible(comments, viewer, placeholders=placeholders)


@dataclass(frozen=True)
class DiffLine:
    kind: str  # "add", "remove", "context" or "hunk"
    text: str


def _revision_text(revision: ClaimRevision) -> list[str]:
    lines = [f"label: {revision.label}"]
    if revision.expression:
        lines.append(f"expression: {revision.expression}")
    return [*lines, "", *revision.argument.splitlines()]


def revision_diff(*, old: ClaimRevision, new: ClaimRevision) -> list[DiffLine]:
    """What changed from ``old`` to ``new``, line by line, with two lines of context."""
    diff = difflib.unified_diff(_revision_text(old), _revision_text(new), lineterm="", n=2)
    lines = []
    for line in diff:
        if line.startswith(("---", "+++")):
            continue
        if line.startswith("@@"):
            lines.append(DiffLine("hunk", line))
        elif line.startswith("+"):
            lines.append(DiffLine("add", line[1:]))
        elif line.startswith("-"):
            lines.append(DiffLine("remove", line[1:]))
        else:
            lines.append(DiffLine("context", line[1:]))
    return lines


def evidence_latest(*, revision: ClaimRevision | int | None) -> Evidence | None:
    """The newest evidence computed (or asked) for a revision, with its job."""
    if revision is None:
        return None
    revision_id = revision if isinstance(revision, int) else revision.pk
    return Evidence.objects.select_related("job").filter(revision_id=revision_id).first()


LABEL_STATUSES = (Status.SUPPORTED, Status.PROPOSED)


def neuron_labels(neurons: Iterable[Neuron]) -> dict[int, Label]:
    """Neuron id -> its current label: its supported feature claim with the most supports,
    else its newest proposed one (a proposed claim has no supports); one query.
    Hidden, retracted and disputed claims label nothing. The catalog's labeller
    (``neurons.labels``)."""
    ids = {neuron.pk for neuron in neurons}
    if not ids:
        return {}
    rows = (
        Claim.objects.filter(
            target_id__in=ids,
            kind=Kind.FEATURE,
            hidden=False,
            status__in=LABEL_STATUSES,
            current_revision__isnull=False,
        )
        # Supported first, the most supported first, then the newest.
        .order_by(
            Case(When(status=Status.SUPPORTED, then=0), default=1),
            "-support_count",
            "-created",
            "-id",
        )
        .values_list("target_id", "current_revision__label", "status", "id")
    )
    labels: dict[int, Label] = {}
    for target, text, status, pk in rows:
        labels.setdefault(target, Label(text, status, reverse("annotations:claim", args=[pk])))
    return labels


@dataclass
class SearchHit:
    """A neuron that claims matching a search are about, with those claims."""

    neuron: Neuron
    claims: list[Claim]


SEARCH_LIMIT = 200  # claims read for one search; hits are grouped from these


def neuron_search(*, text: str, viewer: User = None) -> list[SearchHit]:
    """Neurons whose claims' labels or arguments have the words, the best match first,
    each with its matching claims; claims a viewer may not see are left out."""
    hits: dict[int, SearchHit] = {}
    for claim in claim_list(viewer=viewer, search=text)[:SEARCH_LIMIT]:
        hit = hits.setdefault(claim.target_id, SearchHit(claim.target, []))
        hit.claims.append(claim)
    return list(hits.values())
