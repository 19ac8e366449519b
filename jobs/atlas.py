"""The atlas of a model: everything its pages need, planned as jobs many workers share.

:func:`atlas_request` asks for the dataset-example sweep (one job for every layer), the
connecting weights (one job per layer) and feature visualizations of every channel of
every significant layer at a quality tier, in jobs of ``chunk`` channels so that N workers
on the ``gpu`` queue share them. What is stored is not asked for again, and a queued job
asking for the same is joined, so asking again queues only what is missing. Torch-free.

:func:`coverage` counts, per layer, the channels that have dataset examples and feature
visualizations of each tier.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import reduce
from operator import or_
from typing import Any

from django.db import transaction
from django.db.models import Count, Q, QuerySet

import render
from jobs import params
from jobs.models import Artifact, ArtifactKind
from jobs.planning import RenderPlan, render_request
from neurons.models import Layer, Model

CHUNK = 32  # channels per feature visualization job: a few minutes of a CPU worker


@transaction.atomic
def atlas_request(
    *,
    model: Model,
    tier: str = "preview",
    layers: Sequence[Layer] | None = None,
    chunk: int = CHUNK,
    featurevis: Mapping[str, Any] | None = None,
    enqueue: bool = True,
) -> RenderPlan:
    """Queue what the model's pages lack at ``tier`` (see the module docstring);
    ``featurevis`` parameters, where given, replace the tier's."""
    params.tier_recipes(tier)  # an unknown tier is refused before anything is asked
    chosen = list(layers) if layers else list(model.layers.order_by("position"))
    for layer in chosen:
        layer.model = model
    plan = render_request(
        model=model,
        layers=chosen,
        kinds=[ArtifactKind.EXAMPLES, ArtifactKind.WEIGHTS],
        enqueue=enqueue,
    )
    for layer in chosen:
        fv_params = params.tier_params(tier, layer) if featurevis is None else dict(featurevis)
        for start in range(0, layer.channels, chunk):
            plan = plan.extend(
                render_request(
                    model=model,
                    layers=[layer],
                    kinds=[ArtifactKind.FEATUREVIS],
                    channels=range(start, min(start + chunk, layer.channels)),
                    featurevis=fv_params,
                    enqueue=enqueue,
                )
            )
    return plan


@dataclass(frozen=True)
class LayerCoverage:
    layer: str
    alias: str
    channels: int
    height: int
    width: int
    examples: int
    preview: int
    full: int

    def __str__(self) -> str:
        return (
            f"{self.layer}: {self.preview}/{self.channels} preview, "
            f"{self.full}/{self.channels} full, {self.examples}/{self.channels} examples"
        )


def _recipe(wanted: Mapping[str, Any]) -> Q:
    """An artifact made with ``wanted``'s recipe (any seed), as a query."""
    extras = params.recipe_extras(wanted)
    query = Q(**{f"params__{k}": wanted[k] for k in params.TIER_FIELDS})
    for name in params.RECIPE_DEFAULTS:
        query &= (
            Q(**{f"params__{name}": extras[name]}) if name in extras else ~Q(params__has_key=name)
        )
    return query


def coverage(*, model: Model) -> list[LayerCoverage]:
    """Per layer, channels with dataset examples and with a preview or full feature
    visualization, under the model's current weights; four queries."""
    current = Artifact.objects.filter(
        layer__model=model, params__weights_sha256=model.weights_sha256
    )

    def counted(rows: QuerySet[Artifact]) -> dict[int, int]:
        return dict(rows.values_list("layer_id").annotate(n=Count("neuron_id", distinct=True)))

    examples = counted(current.filter(kind=ArtifactKind.EXAMPLES))
    layers = list(model.layers.order_by("position"))
    tiers = {}
    for tier in params.TIERS:
        # Each layer's own recipe of the tier, the one atlas_request asks for: what coverage
        # counts is what asking again would not queue.
        recipes: dict[str, tuple[dict[str, Any], list[int]]] = {}
        for layer in layers:
            layer.model = model
            wanted = params.tier_params(tier, layer)
            recipes.setdefault(repr(sorted(wanted.items())), (wanted, []))[1].append(layer.pk)
        rows = current.filter(
            kind=ArtifactKind.FEATUREVIS, params__code_version=render.CODE_VERSION
        )
        rows = rows.filter(
            reduce(
                or_,
                (Q(layer_id__in=pks) & _recipe(r) for r, pks in recipes.values()),
                Q(pk__in=[]),  # no layers: nothing
            )
        )
        tiers[tier] = counted(rows)
    return [
        LayerCoverage(
            layer=layer.name,
            alias=layer.alias,
            channels=layer.channels,
            height=layer.height,
            width=layer.width,
            examples=examples.get(layer.pk, 0),
            preview=tiers["preview"].get(layer.pk, 0),
            full=tiers["full"].get(layer.pk, 0),
        )
        for layer in layers
    ]
