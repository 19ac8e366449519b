"""The evidence block of a claim's page: ``{% load evidence %}{% claim_evidence claim %}``.

Shapes the stored ``CircuitEvidence`` JSON (``render.evidence``) into the rows of a small
table; the numbers were computed by a worker (``annotations.executors``), nothing runs
here. ``?revision=N`` on the claim page shows the evidence of an earlier revision.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django import template

from annotations import selectors
from annotations.models import Claim, ClaimRevision, Evidence, Kind
from neurons.validation import whole_number

register = template.Library()

NONE = "\N{EN DASH}"  # a number that does not exist (e.g. the target never fired)
FINDINGS = {
    "agrees": "agrees",
    "contradicts": "contradicts the sign",
    "nothing": "does nothing measurable",
    "untestable": "too few channels to test",
    "silent": "target silent",
}


def percent(value: float | None) -> str:
    return NONE if value is None else f"{100 * value:.1f}%"


def number(value: float | None, digits: int = 2) -> str:
    return NONE if value is None else f"{value:.{digits}f}"


def change(drop: float | None, interval: list[float] | None) -> str:
    """A relative drop as the change it is, e.g. "-12.0% [-15.2, -9.1]" (in minus signs)
    where removing the channels lowers the target."""
    if drop is None:
        return NONE
    text = f"{-100 * drop:+.1f}%".replace("-", "\N{MINUS SIGN}")
    if interval:
        hi, lo = (-100 * v for v in interval)
        text += f" [{lo:+.1f}, {hi:+.1f}]".replace("-", "\N{MINUS SIGN}")
    return text


@dataclass(frozen=True)
class TestRow:
    name: str
    claimed: str  # "excites" / "inhibits"
    connection: str  # "#3 of 96, top 3%" (learned path); "" for groups
    sign: str  # "excitatory" / "inhibitory" by contribution; "" for groups
    skip: bool
    change_all: str  # zeroing it, all paths
    change: str  # over the learned path
    p_value: str
    baseline: str  # "median -0.1% [IQR -0.4 to 0.2] over 95 random channels"
    finding: str
    agrees: bool
    random_change: str  # on the random corpus sample


@dataclass(frozen=True)
class EvidenceView:
    outcome: str
    rows: list[TestRow]
    drop_all: str
    drop_all_random: str
    images: int
    random_images: int
    activation: str
    reduce: str
    r2: str
    r2_claimed: str
    claimed_scale: str
    samples: int
    skip: str | None


def _baseline(test: dict[str, Any]) -> str:
    base = test.get("baseline")
    if not base:
        return "no random channels to compare"
    kind = "channels" if len(test["names"]) == 1 else f"sets of {len(test['names'])}"
    every = "every one of " if base["exhaustive"] else ""
    return (
        f"median {change(base['median'], None)} "
        f"[IQR {change(base['q75'], None)} to {change(base['q25'], None)}] "
        f"over {every}{base['draws']} random {kind}"
    )


def _row(
    test: dict[str, Any], connection: dict[str, Any] | None, random: dict[str, Any] | None
) -> TestRow:
    against = test["finding"] == "contradicts"
    p = test["p_opposite"] if against else test["p_value"]
    link = ""
    if connection is not None:
        share = connection["learned_percentile"]
        where = f"top {share:.1f}%" if share < 10 else f"top {share:.0f}%"
        link = f"#{connection['learned_rank']} of {connection['inputs']}, {where}"
    return TestRow(
        name=" + ".join(test["names"]),
        claimed="excites" if test["claimed_sign"] > 0 else "inhibits",
        connection=link,
        sign=""
        if connection is None
        else ("excitatory" if connection["sign"] > 0 else "inhibitory"),
        skip=bool(connection and connection["skip"]),
        change_all=change(test["drop"], test["interval"]),
        change=change(test["learned_drop"], test["learned_interval"]),
        p_value=NONE if p is None else f"{p:.3f}" + (" (opposite sign)" if against else ""),
        baseline=_baseline(test),
        finding=FINDINGS.get(test["finding"], test["finding"]),
        agrees=test["finding"] == "agrees",
        random_change=NONE if random is None else change(random["learned_drop"], None),
    )


def evidence_view(evidence: Evidence) -> EvidenceView | None:
    """Display strings of a done, supported evidence; None where there is no table."""
    result = evidence.result or {}
    if evidence.status != Evidence.Status.DONE or not result.get("supported"):
        return None
    ablation = result.get("ablation") or {}
    random = result.get("ablation_random") or {}
    sufficiency = result.get("sufficiency") or {}
    connections = result.get("connections") or []
    random_tests = (random.get("components") or []) + (random.get("groups") or [])
    tests = (ablation.get("components") or []) + (ablation.get("groups") or [])
    rows = []
    for i, test in enumerate(tests):
        connection = connections[i] if i < len(ablation.get("components") or []) else None
        rows.append(_row(test, connection, random_tests[i] if i < len(random_tests) else None))
    return EvidenceView(
        outcome=result.get("outcome", ""),
        rows=rows,
        drop_all=change(ablation.get("drop_all"), ablation.get("drop_all_interval")),
        drop_all_random=change(random.get("drop_all"), random.get("drop_all_interval")),
        images=ablation.get("count", 0),
        random_images=random.get("count", 0),
        activation=number(ablation.get("activation"), 3),
        reduce=ablation.get("reduce", ""),
        r2=number(sufficiency.get("r2")),
        r2_claimed=number(sufficiency.get("r2_claimed")),
        claimed_scale=number(sufficiency.get("claimed_scale"), 3),
        samples=sufficiency.get("samples", 0),
        skip=result.get("skip"),
    )


def _revision(claim: Claim, asked: str | None) -> ClaimRevision | int | None:
    if (number := whole_number(asked)) is not None:
        found = claim.revisions.filter(number=number).first()
        if found is not None:
            return found
    return claim.current_revision_id


@register.inclusion_tag("annotations/_evidence.html", takes_context=True)
def claim_evidence(context: template.Context, claim: Claim) -> dict[str, Any]:
    request = context.get("request")
    user = getattr(request, "user", None)
    if claim.kind != Kind.CIRCUIT:
        return {"circuit": False}
    revision = _revision(claim, request.GET.get("revision") if request is not None else None)
    current = not isinstance(revision, ClaimRevision) or revision.pk == claim.current_revision_id
    number = claim.revision_number if current else revision.number
    evidence = selectors.evidence_latest(revision=revision)
    signed_in = bool(user is not None and user.is_authenticated)
    return {
        "circuit": True,
        "claim": claim,
        "number": number,
        "current": current,
        "earlier": list(
            claim.revisions.exclude(number=number)
            .order_by("number")
            .values_list("number", flat=True)
        ),
        "evidence": evidence,
        "view": evidence_view(evidence) if evidence is not None else None,
        "can_ask": signed_in
        and current
        and not claim.retracted
        and (evidence is None or evidence.status == Evidence.Status.FAILED),
        "csrf_token": context.get("csrf_token"),
        "request": request,
    }
