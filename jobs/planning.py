"""Asking for renders: which jobs a request needs, created once and enqueued on commit.

Pages, the API and ``manage.py render`` call :func:`render_request` (or the neuron-level
helpers); apps that own a job kind (claim evidence) call :func:`render_job_create`.
Nothing already stored is asked for again, and a request that a queued job already covers
joins it. Torch-free.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from jobs import kinds as job_kinds
from jobs import params, selectors
from jobs.kinds import Target
from jobs.lifecycle import render_job_enqueue, render_job_publish
from jobs.models import OBJECTIVE_BY_KIND, ArtifactKind, RenderJob, artifact_key
from jobs.storage import artifact_keys_existing
from neurons.models import Layer, Model, Neuron
from neurons.selectors import layer_below
from render import catalog

__all__ = [
    "FEATUREVIS_KINDS",
    "RenderPlan",
    "render_job_create",
    "render_request",
    "render_request_neuron",
]

FEATUREVIS_KINDS = tuple(OBJECTIVE_BY_KIND)
PAGE_FEATUREVIS_KINDS = tuple(k for k in selectors.PAGE_KINDS if k in FEATUREVIS_KINDS)


def _channel_range(channels: range, layer: Layer | None, *, clip: bool = False) -> range:
    """``channels`` checked against ``layer``'s size (cut to it with ``clip``)."""
    if channels.step != 1 or channels.start < 0 or len(channels) == 0:
        raise ValidationError({"channels": f"{channels} is not a channel range"})
    if layer is None:
        return channels
    if clip:
        return range(channels.start, min(channels.stop, layer.channels))
    if channels.stop > layer.channels:
        raise ValidationError(
            {
                "channels": f"channels {channels.start}-{channels.stop - 1} are out of range for "
                f"{layer.model.slug}/{layer.name}, which has channels 0-{layer.channels - 1}"
            }
        )
    return channels


def _target_check(kind: job_kinds.JobKind, layer: Layer | None, channels: range | None) -> None:
    if kind.target is not Target.LAYER_OR_MODEL and layer is None:
        raise ValidationError({"layer": f"a {kind.label} job is about one layer"})
    if kind.target is Target.NEURON and (channels is None or len(channels) != 1):
        raise ValidationError({"channels": f"a {kind.label} job is about one neuron"})


@transaction.atomic
def render_job_create(
    *,
    model: Model,
    layer: Layer | None,
    kind: str,
    params: Mapping[str, Any],
    channels: range | None = None,
    enqueue: bool = True,
    requested_by: AbstractBaseUser | None = None,
) -> RenderJob:
    """Create a job row and enqueue its task, with the id only, once the row is committed.

    ``layer`` None renders every significant layer (kinds that target a model: one sweep
    covers them all). ``enqueue`` False leaves the job for the caller to run
    (``manage.py render --sync``). Raises ValidationError (field: message) on bad input.
    """
    declared = job_kinds.get(kind)
    if layer is not None and layer.model_id != model.pk:
        raise ValidationError({"layer": f"{layer.name} is not a layer of {model.slug}"})
    _target_check(declared, layer, channels)
    checked = declared.params(params)
    if declared.target is Target.WHOLE_LAYER:
        channels = None  # e.g. strongest outputs need every channel of the layer
    start, stop = 0, None
    if channels is not None:
        channels = _channel_range(channels, layer)
        start, stop = channels.start, channels.stop
    job = RenderJob.objects.create(
        model=model,
        layer=layer,
        kind=kind,
        channel_start=start,
        channel_stop=stop,
        params=checked,
        task_id=str(uuid.uuid4()),
        published=timezone.now() if enqueue else None,
        publishes=1 if enqueue else 0,
        requested_by=requested_by,
    )
    if enqueue:
        job_id, task_id = job.pk, job.task_id
        transaction.on_commit(lambda: render_job_enqueue(job_id, task_id))
    return job


def _active_twin(
    *, model: Model, layer: Layer | None, kind: str, params: Mapping[str, Any], span: range | None
) -> RenderJob | None:
    """A queued or running job that asks for the same, or more (its channels include
    ``span``'s): asking again adds nothing. So a neuron page's request joins the atlas job
    that has its channel, rather than rendering it a second time behind it in the queue."""
    start, stop = (0, None) if span is None else (span.start, span.stop)
    reaches = Q(channel_stop__isnull=True)
    if stop is not None:
        reaches |= Q(channel_stop__gte=stop)
    for job in RenderJob.objects.filter(
        reaches,
        model=model,
        layer=layer,
        kind=kind,
        status__in=RenderJob.ACTIVE,
        channel_start__lte=start,
    ).order_by("pk"):
        if job.params == dict(params):
            return job
    return None


@dataclass
class RenderPlan:
    """What a request led to: jobs created or joined, and artifacts that already existed."""

    jobs: list[RenderJob] = field(default_factory=list)
    existing: int = 0  # feature visualizations already rendered, not asked for again
    missing: int = 0  # feature visualizations the jobs will render

    def extend(self, other: RenderPlan) -> RenderPlan:
        joined = {job.pk: job for job in self.jobs + other.jobs}  # a job joined twice: once
        return RenderPlan(
            jobs=list(joined.values()),
            existing=self.existing + other.existing,
            missing=self.missing + other.missing,
        )


@dataclass(frozen=True)
class _Request:
    model: Model
    enqueue: bool
    requested_by: AbstractBaseUser | None = None

    def _within_share(self) -> None:
        """A researcher's jobs waiting or running at once are at most JOBS_PER_PERSON (staff
        and commands ask for any number), so that one person cannot fill the GPU queue."""
        person = self.requested_by
        if person is None or person.is_staff:
            return
        most = settings.MICROSCOPE_JOBS_PER_PERSON
        # The person's row, locked until commit: their requests at once count in turn.
        get_user_model().objects.select_for_update().filter(pk=person.pk).exists()
        active = RenderJob.objects.filter(requested_by=person, status__in=RenderJob.ACTIVE)
        if active.count() >= most:
            raise ValidationError(
                {"jobs": f"at most {most} of your jobs wait or run at once (this request needs "
                 "more); ask again when some are done, or cancel some on /jobs/"}
            )  # fmt: skip

    def job(
        self, *, layer: Layer | None, kind: str, params: Mapping[str, Any], span: range | None
    ) -> RenderJob:
        twin = _active_twin(model=self.model, layer=layer, kind=kind, params=params, span=span)
        if twin is not None:
            if self.enqueue and twin.status == RenderJob.Status.QUEUED:
                # Its message may be lost (a broker restarted): asking again publishes it
                # again, harmlessly if it was not.
                job_id = twin.pk
                transaction.on_commit(lambda: render_job_publish(job_id=job_id))
            return twin
        self._within_share()
        return render_job_create(
            model=self.model,
            layer=layer,
            kind=kind,
            params=params,
            channels=span,
            enqueue=self.enqueue,
            requested_by=self.requested_by,
        )


def _span(layer: Layer, channels: range | None, *, clip: bool) -> range | None:
    """The channels of ``layer`` to render; None: all of them."""
    if channels is None:
        return None
    channels = _channel_range(channels, layer, clip=clip)
    return None if channels == range(layer.channels) else channels


def _featurevis_jobs(
    request: _Request,
    spans: dict[Layer, range | None],
    kinds_asked: Sequence[str],
    fv_params: Mapping[str, Any],
) -> RenderPlan:
    plan = RenderPlan()
    for layer, span in spans.items():
        wanted = range(layer.channels) if span is None else span
        for kind in kinds_asked:
            if kind not in FEATUREVIS_KINDS or not wanted:
                continue
            keys = {
                artifact_key(
                    **params.featurevis_identity(
                        kind=kind, layer=layer, channel=c, params=fv_params
                    )
                )
                for c in wanted
            }
            found = len(artifact_keys_existing(keys))
            plan.existing += found
            if found == len(keys):
                continue
            plan.missing += len(keys) - found
            plan.jobs.append(request.job(layer=layer, kind=kind, params=fv_params, span=span))
    return plan


def _examples_jobs(
    request: _Request,
    spans: dict[Layer, range | None],
    channels: range | None,
    ex_params: Mapping[str, Any],
) -> RenderPlan:
    if not params.corpus_path(ex_params["corpus"]).is_dir():
        raise ValidationError({"examples": f"{ex_params['corpus']} is not a folder"})
    all_layers = set(request.model.layers.values_list("pk", flat=True))
    if {layer.pk for layer in spans} == all_layers:
        # One sweep for all; the job cuts the range to each layer's size.
        targets: list[tuple[Layer | None, range | None]] = [(None, channels)]
    else:
        targets = list(spans.items())
    plan = RenderPlan()
    for layer, span in targets:
        if span is not None and not span:
            continue
        plan.jobs.append(
            request.job(layer=layer, kind=ArtifactKind.EXAMPLES, params=ex_params, span=span)
        )
    return plan


def _weights_jobs(
    request: _Request, layers: Sequence[Layer], w_params: Mapping[str, Any]
) -> RenderPlan:
    plan = RenderPlan()
    for layer in layers:
        below = layer_below(layer)
        if below is None:  # the lowest layer: no inputs to compute
            continue
        identities = params.weights_identities(layer=layer, below=below, params=w_params)
        keys = {artifact_key(**identity) for identity in identities.values()}
        if len(artifact_keys_existing(keys)) == len(keys):
            continue
        plan.jobs.append(
            request.job(layer=layer, kind=ArtifactKind.WEIGHTS, params=w_params, span=None)
        )
    return plan


def render_request(
    *,
    model: Model,
    layers: Sequence[Layer],
    kinds: Sequence[str],
    channels: range | None = None,
    clip: bool = False,
    featurevis: Mapping[str, Any] | None = None,
    examples: Mapping[str, Any] | None = None,
    weights: Mapping[str, Any] | None = None,
    enqueue: bool = True,
    requested_by: AbstractBaseUser | None = None,
) -> RenderPlan:
    """Ask for renders, skipping what exists and what a queued job already asks for.

    One feature visualization job per (layer, kind) with something missing; one dataset
    example job for all ``layers`` when they are all the model's layers, else one per layer;
    one weights job per layer (from the layer below; every channel, whatever ``channels``)
    with something missing.
    ``clip`` cuts ``channels`` to each layer's size instead of refusing a range too wide.
    Raises ValidationError (field: message) on bad input, weights missing included.
    """
    if not model.has_weights:
        raise ValidationError({"model": catalog.missing_message(catalog.get(model.slug))})
    kinds = list(dict.fromkeys(kinds))  # a kind asked twice is asked once
    for kind in kinds:
        if not job_kinds.get(kind).requestable:
            raise ValidationError({"kind": f"{kind}: not asked for here (its app makes it)"})
    fv_params = params.featurevis_params(**(featurevis or {}))
    spans = {layer: _span(layer, channels, clip=clip) for layer in layers}
    request = _Request(model=model, enqueue=enqueue, requested_by=requested_by)
    with transaction.atomic():
        plan = _featurevis_jobs(request, spans, kinds, fv_params)
        if ArtifactKind.EXAMPLES in kinds:
            ex_params = params.examples_params(**(examples or {}))
            plan = plan.extend(_examples_jobs(request, spans, channels, ex_params))
        if ArtifactKind.WEIGHTS in kinds:
            w_params = params.weights_params(**(weights or {}))
            plan = plan.extend(_weights_jobs(request, layers, w_params))
    return plan


@transaction.atomic
def render_request_neuron(
    *,
    neuron: Neuron,
    kinds: Sequence[str] | None = None,
    featurevis: Mapping[str, Any] | None = None,
    requested_by: AbstractBaseUser | None = None,
) -> RenderPlan:
    """Renders of one neuron: feature visualizations of its channel, dataset examples
    of its whole layer (one sweep gives every channel's), and connecting weights: its
    layer's from the layer below (its inputs) and the layer above's (its outputs).

    ``kinds`` None asks for what the neuron page lacks (no artifact of that kind yet) at
    the default budget, or, with a ``featurevis`` budget, for the page's feature
    visualizations at that budget. Raises ValidationError as :func:`render_request` does.
    """
    layer = neuron.layer
    weights_wanted: list[Layer] = []
    if kinds is None and featurevis:
        kinds = PAGE_FEATUREVIS_KINDS
    if kinds is None:
        have = selectors.artifact_kinds_of(neuron=neuron)
        kinds = [kind for kind in selectors.PAGE_KINDS if kind not in have]
        weights_wanted = selectors.weights_missing(neuron=neuron)
    elif ArtifactKind.WEIGHTS in kinds:
        weights_wanted = [up for up in selectors.weights_layers(neuron=neuron).values() if up]
    plan = RenderPlan()
    featurevis_kinds = [kind for kind in kinds if kind in FEATUREVIS_KINDS]
    if featurevis_kinds:
        plan = render_request(
            model=layer.model,
            layers=[layer],
            kinds=featurevis_kinds,
            channels=range(neuron.index, neuron.index + 1),
            featurevis=featurevis,
            requested_by=requested_by,
        )
    if ArtifactKind.EXAMPLES in kinds:  # one sweep renders the whole layer's examples
        examples = render_request(
            model=layer.model,
            layers=[layer],
            kinds=[ArtifactKind.EXAMPLES],
            requested_by=requested_by,
        )
        plan = plan.extend(examples)
    if weights_wanted:
        connections = render_request(
            model=layer.model,
            layers=weights_wanted,
            kinds=[ArtifactKind.WEIGHTS],
            requested_by=requested_by,
        )
        plan = plan.extend(connections)
    return plan
