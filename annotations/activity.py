"""What happened: the newest claims, reviews and evidence, and the most disputed claims,
as visitors may see them (hidden ones never)."""

from __future__ import annotations

from django.db.models import QuerySet

from annotations import selectors
from annotations.models import Claim, Evidence, Review

RECENT = 8


def _claims(*, model: str | None = None) -> QuerySet[Claim]:
    """Claims as a visitor sees them (the claims page's rule), with a revision to show."""
    return selectors.claim_list(model=model).filter(current_revision__isnull=False)


def recent_claims(*, model: str | None = None, limit: int = RECENT) -> list[Claim]:
    return list(_claims(model=model).order_by("-created", "-id")[:limit])


def recent_reviews(*, limit: int = RECENT) -> list[Review]:
    reviews = Review.objects.filter(hidden=False, claim__hidden=False, current=True)
    return list(
        reviews.select_related("claim__current_revision", "claim__target__layer__model")
        .select_related("reviewer__profile")
        .order_by("-created", "-id")[:limit]
    )


def recent_evidence(*, limit: int = RECENT) -> list[Evidence]:
    evidence = Evidence.objects.filter(status=Evidence.Status.DONE, revision__claim__hidden=False)
    return list(
        evidence.select_related("revision__claim__target__layer__model").order_by(
            "-finished", "-id"
        )[:limit]
    )


def most_disputed(*, limit: int = RECENT) -> list[Claim]:
    return list(
        _claims().filter(dispute_count__gt=0).order_by("-dispute_count", "-created")[:limit]
    )
