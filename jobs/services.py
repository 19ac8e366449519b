"""Writes for renders: jobs are created, claimed and finished here; artifacts are stored here.

Pages and the command call :func:`render_request` / :func:`render_job_create`; workers call
the claim, progress and finish functions (through ``jobs.runner``). Nothing here runs torch.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from enum import Enum
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

import render
from jobs import tasks
from jobs.models import OBJECTIVE_BY_KIND, Artifact, Kind, RenderJob, artifact_key
from neurons.models import Layer, Model, Neuron
from render import organisms
from render.featurevis import FeatureVisParams

FEATUREVIS_KINDS = tuple(OBJECTIVE_BY_KIND)
# What the neuron page's button asks for when it is missing.
PAGE_KINDS = (Kind.FEATUREVIS, Kind.FEATUREVIS_NEGATIVE, Kind.FEATUREVIS_DIVERSITY, Kind.EXAMPLES)
EXAMPLES_K = 16
EXAMPLES_BINS = 50
# Connections listed per neuron and direction on its page.
WEIGHTS_TOP = 10
WEIGHTS_TOP_MAX = 64
INPUTS, OUTPUTS = "inputs", "outputs"


# --- parameters and identities ------------------------------------------------------------


def featurevis_params(
    *, steps: int | None = None, size: int | None = None, seed: int = 0, lr: float = 0.05
) -> dict[str, Any]:
    """A job's feature vis parameters, checked; defaults from settings."""
    params = FeatureVisParams(
        steps=settings.MICROSCOPE_RENDER_STEPS if steps is None else steps,
        size=settings.MICROSCOPE_RENDER_SIZE if size is None else size,
        seed=seed,
        lr=lr,
    )
    try:
        params.validate()
    except ValueError as exc:
        field = str(exc).split()[0]
        raise ValidationError(
            {field if field in ("steps", "size", "seed", "lr") else "params": str(exc)}
        ) from None
    return {"steps": params.steps, "size": params.size, "seed": params.seed, "lr": params.lr}


def examples_params(
    *, corpus: str | None = None, k: int = EXAMPLES_K, bins: int = EXAMPLES_BINS
) -> dict[str, Any]:
    """A job's dataset example parameters. ``corpus`` is a folder as the workers see it."""
    corpus = corpus or settings.MICROSCOPE_EXAMPLES_DIR
    if k < 1 or bins < 1:
        raise ValidationError({"params": f"k and bins must be at least 1, got k={k}, bins={bins}"})
    return {"corpus": str(corpus), "k": k, "bins": bins}


def corpus_path(corpus: str) -> Path:
    """A corpus folder; a relative one is relative to the project (``demo/photos``)."""
    path = Path(corpus).expanduser()
    return path if path.is_absolute() else Path(settings.BASE_DIR) / path


def weights_params(*, top: int = WEIGHTS_TOP) -> dict[str, Any]:
    """A weights job's parameters: how many connections to keep per neuron and direction."""
    if not 1 <= top <= WEIGHTS_TOP_MAX:
        raise ValidationError({"params": f"top must be 1-{WEIGHTS_TOP_MAX}, got {top}"})
    return {"top": top}


def layer_below(layer: Layer) -> Layer | None:
    """The significant layer directly below ``layer`` (None for the lowest)."""
    return (
        Layer.objects.filter(model_id=layer.model_id, position__lt=layer.position)
        .order_by("-position")
        .first()
    )


def layer_above(layer: Layer) -> Layer | None:
    """The significant layer directly above ``layer`` (None for the highest)."""
    return (
        Layer.objects.filter(model_id=layer.model_id, position__gt=layer.position)
        .order_by("position")
        .first()
    )


def weights_identity(
    *, layer: Layer, below: Layer, direction: str, channel: int, params: Mapping[str, Any]
) -> dict[str, Any]:
    """Everything that makes one neuron's list of connections between ``below`` and
    ``layer``: its strongest inputs (``direction`` "inputs", ``channel`` of ``layer``) or
    its strongest outputs ("outputs", ``channel`` of ``below``)."""
    return {
        "kind": str(Kind.WEIGHTS),
        "model": layer.model.slug,
        "weights_sha256": layer.model.weights_sha256,
        "layer": layer.name,
        "below": below.name,
        "direction": direction,
        "channel": channel,
        "top": params["top"],
        "code_version": render.CODE_VERSION,
    }


def weights_identities(
    *, layer: Layer, below: Layer, params: Mapping[str, Any]
) -> dict[tuple[str, int], dict[str, Any]]:
    """(direction, channel) -> identity, for everything a weights job of ``layer`` makes:
    the inputs of each of its neurons and the outputs of each neuron of ``below``."""
    identities = {}
    for direction, count in ((INPUTS, layer.channels), (OUTPUTS, below.channels)):
        for channel in range(count):
            identities[direction, channel] = weights_identity(
                layer=layer, below=below, direction=direction, channel=channel, params=params
            )
    return identities


def weights_layers(*, neuron: Neuron) -> dict[str, Layer | None]:
    """The upper layer of each weights job a neuron's page reads: its own layer for its
    inputs (None when nothing is below it) and the layer above for its outputs (None at
    the top)."""
    layer = neuron.layer
    return {
        INPUTS: layer if layer_below(layer) is not None else None,
        OUTPUTS: layer_above(layer),
    }


def weights_missing(*, neuron: Neuron) -> list[Layer]:
    """Upper layers whose weights job would fill what the neuron's page lacks."""
    have = set(
        Artifact.objects.filter(neuron=neuron, kind=Kind.WEIGHTS).values_list(
            "params__direction", flat=True
        )
    )
    return [
        upper
        for direction, upper in weights_layers(neuron=neuron).items()
        if upper is not None and direction not in have
    ]


def featurevis_identity(
    *, kind: str, layer: Layer, channel: int, params: Mapping[str, Any]
) -> dict[str, Any]:
    """Everything that makes a feature visualization; its hash is the artifact's key."""
    return {
        "kind": str(kind),
        "model": layer.model.slug,
        "weights_sha256": layer.model.weights_sha256,
        "layer": layer.name,
        "channel": channel,
        "objective": OBJECTIVE_BY_KIND[Kind(kind)],
        "steps": params["steps"],
        "size": params["size"],
        "seed": params["seed"],
        "lr": params["lr"],
        "code_version": render.CODE_VERSION,
    }


def examples_identity(
    *, layer: Layer, channel: int, corpus_sha256: str, params: Mapping[str, Any]
) -> dict[str, Any]:
    """Everything that makes a neuron's dataset examples: the corpus by content, not path."""
    return {
        "kind": str(Kind.EXAMPLES),
        "model": layer.model.slug,
        "weights_sha256": layer.model.weights_sha256,
        "layer": layer.name,
        "channel": channel,
        "corpus_sha256": corpus_sha256,
        "k": params["k"],
        "bins": params["bins"],
        "input_size": layer.model.input_size,
        "code_version": render.CODE_VERSION,
    }


def artifact_keys_existing(keys: Iterable[str]) -> set[str]:
    return set(Artifact.objects.filter(key__in=list(keys)).values_list("key", flat=True))


# --- requests and jobs ------------------------------------------------------------------------


def job_channels(job: RenderJob, layer: Layer) -> range:
    stop = layer.channels if job.channel_stop is None else min(job.channel_stop, layer.channels)
    return range(min(job.channel_start, stop), stop)


def _enqueue(job_id: int, task_id: str) -> None:
    tasks.render_task.apply_async(args=[job_id], task_id=task_id)


@transaction.atomic
def render_job_create(
    *,
    model: Model,
    layer: Layer | None,
    kind: str,
    params: Mapping[str, Any],
    channels: range | None = None,
    enqueue: bool = True,
) -> RenderJob:
    """Create a job row and enqueue its task, with the id only, once the row is committed.

    ``layer`` None renders every significant layer (dataset examples only: one sweep
    covers them all). ``enqueue`` False leaves the job for the caller to run
    (``manage.py render --sync``). Raises ValidationError (field: message) on bad input.
    """
    if kind not in Kind.values:
        raise ValidationError(
            {"kind": f"unknown kind {kind!r}; choose one of {', '.join(Kind.values)}"}
        )
    if layer is not None and layer.model_id != model.pk:
        raise ValidationError({"layer": f"{layer.name} is not a layer of {model.slug}"})
    if kind in FEATUREVIS_KINDS:
        if layer is None:
            raise ValidationError({"layer": "a feature visualization job renders one layer"})
        params = featurevis_params(
            **{k: params[k] for k in ("steps", "size", "seed", "lr") if k in params}
        )
    elif kind == Kind.WEIGHTS:
        if layer is None:
            raise ValidationError({"layer": "a weights job computes one layer from the one below"})
        params = weights_params(**{k: params[k] for k in ("top",) if k in params})
        channels = None  # strongest outputs need every channel of the layer: always all
    elif kind == Kind.EVIDENCE:
        if layer is None or channels is None or len(channels) != 1:
            raise ValidationError({"layer": "an evidence job is about one neuron"})
        if not isinstance(params.get("evidence"), int):
            raise ValidationError({"params": "an evidence job needs the id of its evidence row"})
        params = {"evidence": params["evidence"]}
    else:
        params = examples_params(**{k: params[k] for k in ("corpus", "k", "bins") if k in params})
    start, stop = 0, None
    if channels is not None:
        if channels.step != 1 or len(channels) == 0 or channels.start < 0:
            raise ValidationError({"channels": f"{channels} is not a channel range"})
        limit = layer.channels if layer is not None else None
        if limit is not None and channels.stop > limit:
            raise ValidationError(
                {
                    "channels": f"channels {channels.start}-{channels.stop - 1} are out of range "
                    f"for {model.slug}/{layer.name}, which has channels 0-{limit - 1}"
                }
            )
        start, stop = channels.start, channels.stop
    job = RenderJob.objects.create(
        model=model,
        layer=layer,
        kind=kind,
        channel_start=start,
        channel_stop=stop,
        params=dict(params),
        task_id=str(uuid.uuid4()),
    )
    if enqueue:
        job_id, task_id = job.pk, job.task_id
        transaction.on_commit(lambda: _enqueue(job_id, task_id))
    return job


def _active_twin(
    *,
    model: Model,
    layer: Layer | None,
    kind: str,
    params: Mapping[str, Any],
    channels: range | None,
) -> RenderJob | None:
    """A queued or running job that asks for the same thing: asking again adds nothing."""
    start, stop = (0, None) if channels is None else (channels.start, channels.stop)
    for job in RenderJob.objects.filter(
        model=model,
        layer=layer,
        kind=kind,
        status__in=RenderJob.ACTIVE,
        channel_start=start,
        channel_stop=stop,
    ):
        if job.params == dict(params):
            return job
    return None


@dataclass(frozen=True)
class RenderPlan:
    """What a request led to: jobs created or joined, and artifacts that already existed."""

    jobs: list[RenderJob]
    existing: int  # feature visualizations already rendered, not asked for again
    missing: int  # feature visualizations the jobs will render


def _span(layer: Layer, channels: range | None, *, clip: bool) -> range | None:
    """The channels of ``layer`` to render; None: all of them. Checks or clips the range."""
    if channels is None:
        return None
    if channels.step != 1 or channels.start < 0 or len(channels) == 0:
        raise ValidationError({"channels": f"{channels} is not a channel range"})
    if clip:
        channels = range(channels.start, min(channels.stop, layer.channels))
        if len(channels) == 0:
            return range(0)
    elif channels.stop > layer.channels:
        raise ValidationError(
            {
                "channels": f"channels {channels.start}-{channels.stop - 1} are out of range for "
                f"{layer.model.slug}/{layer.name}, which has channels 0-{layer.channels - 1}"
            }
        )
    return None if channels == range(layer.channels) else channels


def _job_for(
    *,
    model: Model,
    layer: Layer | None,
    kind: str,
    params: Mapping[str, Any],
    channels: range | None,
    enqueue: bool,
) -> RenderJob:
    return _active_twin(
        model=model, layer=layer, kind=kind, params=params, channels=channels
    ) or render_job_create(
        model=model, layer=layer, kind=kind, params=params, channels=channels, enqueue=enqueue
    )


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
        raise ValidationError({"model": organisms.missing_message(organisms.get(model.slug))})
    unknown = [kind for kind in kinds if kind not in Kind.values]
    if unknown:
        raise ValidationError(
            {"kind": f"unknown kind {unknown[0]!r}; choose from {', '.join(Kind.values)}"}
        )
    if Kind.EVIDENCE in kinds:
        raise ValidationError(
            {"kind": "circuit evidence is computed for each circuit claim, not requested here"}
        )
    fv_params = featurevis_params(**(featurevis or {}))
    spans = {layer.pk: _span(layer, channels, clip=clip) for layer in layers}
    jobs: list[RenderJob] = []
    existing = missing = 0
    with transaction.atomic():
        for layer in layers:
            span = spans[layer.pk]
            wanted = range(layer.channels) if span is None else span
            for kind in kinds:
                if kind not in FEATUREVIS_KINDS or not wanted:
                    continue
                keys = {
                    artifact_key(
                        **featurevis_identity(kind=kind, layer=layer, channel=c, params=fv_params)
                    )
                    for c in wanted
                }
                found = len(artifact_keys_existing(keys))
                existing += found
                if found == len(keys):
                    continue
                missing += len(keys) - found
                jobs.append(
                    _job_for(
                        model=model,
                        layer=layer,
                        kind=kind,
                        params=fv_params,
                        channels=span,
                        enqueue=enqueue,
                    )
                )
        if Kind.EXAMPLES in kinds:
            ex_params = examples_params(**(examples or {}))
            if not corpus_path(ex_params["corpus"]).is_dir():
                raise ValidationError({"examples": f"{ex_params['corpus']} is not a folder"})
            all_layers = set(model.layers.values_list("pk", flat=True))
            if {layer.pk for layer in layers} == all_layers:
                # One sweep for all; the job cuts the range to each layer's size.
                targets: list[tuple[Layer | None, range | None]] = [(None, channels)]
            else:
                targets = [(layer, spans[layer.pk]) for layer in layers]
            for layer, span in targets:
                if span is not None and not span:
                    continue
                jobs.append(
                    _job_for(
                        model=model,
                        layer=layer,
                        kind=Kind.EXAMPLES,
                        params=ex_params,
                        channels=span,
                        enqueue=enqueue,
                    )
                )
        if Kind.WEIGHTS in kinds:
            w_params = weights_params(**(weights or {}))
            for layer in layers:
                below = layer_below(layer)
                if below is None:  # the lowest layer: no inputs to compute
                    continue
                keys = {
                    artifact_key(**identity)
                    for identity in weights_identities(
                        layer=layer, below=below, params=w_params
                    ).values()
                }
                if len(artifact_keys_existing(keys)) == len(keys):
                    continue
                jobs.append(
                    _job_for(
                        model=model,
                        layer=layer,
                        kind=Kind.WEIGHTS,
                        params=w_params,
                        channels=None,
                        enqueue=enqueue,
                    )
                )
    return RenderPlan(jobs=jobs, existing=existing, missing=missing)


@transaction.atomic
def render_request_neuron(
    *,
    neuron: Neuron,
    kinds: Sequence[str] | None = None,
    featurevis: Mapping[str, Any] | None = None,
) -> RenderPlan:
    """Renders of one neuron: feature visualizations of its channel, dataset examples
    of its whole layer (one sweep gives every channel's), and connecting weights: its
    layer's from the layer below (its inputs) and the layer above's (its outputs).

    ``kinds`` None asks for what the neuron page lacks (no artifact of that kind yet), at
    the default budget. Raises ValidationError as :func:`render_request` does.
    """
    layer = neuron.layer
    weights_wanted: list[Layer] = []
    if kinds is None:
        have = set(Artifact.objects.filter(neuron=neuron).values_list("kind", flat=True))
        kinds = [kind for kind in PAGE_KINDS if kind not in have]
        weights_wanted = weights_missing(neuron=neuron)
    elif Kind.WEIGHTS in kinds:
        weights_wanted = [upper for upper in weights_layers(neuron=neuron).values() if upper]
    kinds = [kind for kind in kinds if kind != Kind.WEIGHTS]
    if not kinds and not weights_wanted:
        return RenderPlan(jobs=[], existing=0, missing=0)
    plan = render_request(
        model=layer.model,
        layers=[layer],
        kinds=[kind for kind in kinds if kind != Kind.EXAMPLES],
        channels=range(neuron.index, neuron.index + 1),
        featurevis=featurevis,
    )
    if Kind.EXAMPLES in kinds:
        examples = render_request(model=layer.model, layers=[layer], kinds=[Kind.EXAMPLES])
        plan = RenderPlan(
            jobs=plan.jobs + examples.jobs, existing=plan.existing, missing=plan.missing
        )
    if weights_wanted:
        connections = render_request(model=layer.model, layers=weights_wanted, kinds=[Kind.WEIGHTS])
        plan = RenderPlan(
            jobs=plan.jobs + connections.jobs, existing=plan.existing, missing=plan.missing
        )
    return plan


def render_request_missing(*, neuron: Neuron) -> RenderPlan:
    """The neuron page's button: what the page lacks, at the default budget."""
    return render_request_neuron(neuron=neuron)


# --- workers: claim, progress, finish ---------------------------------------------------------


class Claim(Enum):
    CLAIMED = "claimed"
    BUSY = "busy"  # another worker holds it and is alive: look again later
    FINISHED = "finished"  # done or failed already: nothing to do
    GONE = "gone"  # no such job (deleted)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _stale_before() -> Any:
    return timezone.now() - timedelta(seconds=settings.MICROSCOPE_JOB_STALE_SECONDS)


def render_job_claim(*, job_id: int, task_id: str = "") -> tuple[Claim, RenderJob | None]:
    """Take a job atomically: queued, or running under a worker whose heartbeat stopped.

    A redelivered message for a job that is running elsewhere, done or failed claims nothing.
    """
    now = timezone.now()
    claimable = Q(status=RenderJob.Status.QUEUED) | Q(
        status=RenderJob.Status.RUNNING, heartbeat__lt=_stale_before()
    )
    updates: dict[str, Any] = {
        "status": RenderJob.Status.RUNNING,
        "started": now,
        "heartbeat": now,
        "finished": None,
        "error": "",
        "worker": worker_name(),
        "attempts": F("attempts") + 1,
    }
    if task_id:
        updates["task_id"] = task_id
    if RenderJob.objects.filter(claimable, id=job_id).update(**updates):
        return Claim.CLAIMED, RenderJob.objects.select_related("model", "layer").get(id=job_id)
    job = RenderJob.objects.filter(id=job_id).first()
    if job is None:
        return Claim.GONE, None
    if job.status == RenderJob.Status.RUNNING:
        return Claim.BUSY, job
    return Claim.FINISHED, job


def render_job_beat(*, job_id: int) -> None:
    RenderJob.objects.filter(id=job_id, status=RenderJob.Status.RUNNING).update(
        heartbeat=timezone.now()
    )


def render_job_progress(*, job_id: int, done: int, total: int) -> None:
    RenderJob.objects.filter(id=job_id, status=RenderJob.Status.RUNNING).update(
        progress_done=done, progress_total=total, heartbeat=timezone.now()
    )


def render_job_finish(*, job_id: int, error: str = "") -> None:
    status = RenderJob.Status.FAILED if error else RenderJob.Status.DONE
    updates: dict[str, Any] = {"status": status, "error": error, "finished": timezone.now()}
    if not error:
        updates["progress_done"] = F("progress_total")
    RenderJob.objects.filter(id=job_id).update(**updates)


def render_job_recover() -> list[int]:
    """Queue again the running jobs whose worker died (heartbeat stopped).

    For brokers that lose a dead worker's message (the filesystem one loses it when the
    whole worker is killed); workers call this when they start. Each job is put back to
    queued by one conditional update, so one caller re-enqueues it, not all of them.
    """
    recovered = []
    for job in RenderJob.objects.filter(
        status=RenderJob.Status.RUNNING, heartbeat__lt=_stale_before()
    ).only("id", "task_id"):
        if RenderJob.objects.filter(
            id=job.pk, status=RenderJob.Status.RUNNING, heartbeat__lt=_stale_before()
        ).update(status=RenderJob.Status.QUEUED, task_id=str(uuid.uuid4())):
            job.refresh_from_db(fields=["task_id"])
            _enqueue(job.pk, job.task_id)
            recovered.append(job.pk)
    return recovered


# --- artifacts --------------------------------------------------------------------------------


def _save_file(name: str, content: bytes) -> str:
    """Write a media file under exactly this name (a retried job overwrites its own leftover)."""
    if default_storage.exists(name):
        default_storage.delete(name)
    return default_storage.save(name, ContentFile(content))


def artifact_create(
    *,
    kind: str,
    neuron: Neuron,
    identity: Mapping[str, Any],
    images: Sequence[bytes] = (),
    data: Mapping[str, Any] | None = None,
    job: RenderJob | None = None,
) -> Artifact:
    """Store one artifact: its PNG files in media storage, then its row. Same key, same row."""
    key = artifact_key(**identity)
    found = Artifact.objects.filter(key=key).first()
    if found is not None:
        return found
    layer = neuron.layer
    stem = f"artifacts/{layer.model.slug}/{layer.name}/{neuron.index:04d}-{kind}-{key[:16]}"
    files = [
        _save_file(f"{stem}.png" if len(images) == 1 else f"{stem}-{i}.png", content)
        for i, content in enumerate(images)
    ]
    try:
        with transaction.atomic():
            return Artifact.objects.create(
                kind=kind,
                layer=layer,
                neuron=neuron,
                params=dict(identity),
                key=key,
                files=files,
                data=dict(data or {}),
                job=job,
            )
    except IntegrityError:  # another worker stored the same key meanwhile: same files
        return Artifact.objects.get(key=key)


def artifacts_bulk_create(*, artifacts: Sequence[Artifact]) -> int:
    """Store many file-less artifacts (dataset examples) at once; existing keys are skipped."""
    existing = artifact_keys_existing(a.key for a in artifacts)
    fresh = [a for a in artifacts if a.key not in existing]
    Artifact.objects.bulk_create(fresh, batch_size=500, ignore_conflicts=True)
    return len(fresh)


def example_image_save(*, name: str, content: bytes) -> str:
    """A corpus image as the model saw it, stored once under its content's hash."""
    if not default_storage.exists(name):
        default_storage.save(name, ContentFile(content))
    return name
