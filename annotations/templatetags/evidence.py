"""The evidence block of a claim's page: ``{% load evidence %}{% claim_evidence claim %}``.

Shapes the stored ``CircuitEvidence`` JSON into the rows of a small table and a few lines;
the numbers were computed by a worker (``jobs.runner.evidence_run``), nothing runs here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django import template

from annotations import selectors
from annotations.models import Claim, Evidence, Kind

register = template.Library()

NONE = "\N{EN DASH}"  # a number that does not exist (e.g. the target never fired)


def percent(value: float | None) -> str:
    return NONE if value is None else f"{100 * value:.0f}%"


def number(value: float | None, digits: int = 2) -> str:
    return NONE if value is None else f"{value:.{digits}f}"


@dataclass(frozen=True)
class ComponentRow:
    name: str
    coefficient: float
    strength: str
    excitatory: bool
    rank: int
    inputs: int
    percentile: str
    drop: str  # ablation drop, zeroed alone


@dataclass(frozen=True)
class EvidenceView:
    rows: list[ComponentRow]
    drop_all: str
    random_mean: str
    random_std: str
    random_draws: int
    random_at_least: str
    images: int
    activation: str
    reduce: str
    r2: str
    r2_claimed: str
    samples: int


def evidence_view(evidence: Evidence) -> EvidenceView | None:
    """Display strings of a done, supported evidence; None where there is no table."""
    result = evidence.result or {}
    if evidence.status != Evidence.Status.DONE or not result.get("supported"):
        return None
    ablation = result.get("ablation") or {}
    sufficiency = result.get("sufficiency") or {}
    drops = ablation.get("drop_each") or []
    rows = [
        ComponentRow(
            name=c["name"],
            coefficient=c["coefficient"],
            strength=number(c["strength"], 3),
            excitatory=c["sign"] > 0,
            rank=c["rank"],
            inputs=c["inputs"],
            percentile=f"top {c['percentile']:.1f}%",
            drop=percent(drops[i] if i < len(drops) else None),
        )
        for i, c in enumerate(result.get("connections", []))
    ]
    at_least = ablation.get("random_at_least")
    return EvidenceView(
        rows=rows,
        drop_all=percent(ablation.get("drop_all")),
        random_mean=percent(ablation.get("random_drop_mean")),
        random_std=percent(ablation.get("random_drop_std")),
        random_draws=ablation.get("random_draws", 0),
        random_at_least=NONE if at_least is None else f"{100 * at_least:.0f}%",
        images=ablation.get("images", 0),
        activation=number(ablation.get("activation"), 3),
        reduce=ablation.get("reduce", ""),
        r2=number(sufficiency.get("r2")),
        r2_claimed=number(sufficiency.get("r2_claimed")),
        samples=sufficiency.get("samples", 0),
    )


@register.inclusion_tag("annotations/_evidence.html", takes_context=True)
def claim_evidence(context: template.Context, claim: Claim) -> dict[str, Any]:
    request = context.get("request")
    user = getattr(request, "user", None)
    if claim.kind != Kind.CIRCUIT:
        return {"circuit": False}
    evidence = selectors.evidence_latest(revision=claim.current_revision_id)
    signed_in = bool(user is not None and user.is_authenticated)
    return {
        "circuit": True,
        "claim": claim,
        "evidence": evidence,
        "view": evidence_view(evidence) if evidence is not None else None,
        "can_ask": signed_in
        and not claim.retracted
        and (evidence is None or evidence.status == Evidence.Status.FAILED),
        "csrf_token": context.get("csrf_token"),
        "request": request,
    }
