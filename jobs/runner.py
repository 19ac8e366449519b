"""The worker side of render jobs: the one place where Django and torch meet.

``render_job_execute`` claims a job, keeps its heartbeat while it runs, renders only the
artifacts whose keys are not stored yet, and ends the job as done or failed with a reason
a person can act on. Celery's task (``jobs.tasks``) and ``manage.py render --sync`` call it.
"""

from __future__ import annotations

import base64
import hashlib
import io
import logging
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.files.storage import default_storage
from django.db import connection
from PIL import Image

import render
from annotations import services as claims
from annotations.models import Evidence, Role
from jobs import services
from jobs.models import OBJECTIVE_BY_KIND, Artifact, Kind, RenderJob, artifact_key
from jobs.services import Claim
from neurons.models import Layer, Model, Neuron
from render import organisms
from render.evidence import Component, circuit_evidence
from render.examples import list_images, load_image, sweep
from render.featurevis import FeatureVisParams, render_channels, to_png
from render.weights import (
    Connection,
    ExpandedWeights,
    expanded_weights,
    heatmap_png,
    strongest_inputs,
    strongest_outputs,
)

logger = logging.getLogger(__name__)

Progress = Callable[[int, int], None]


class RenderFailure(Exception):
    """A job cannot be done; the message says why and what to do."""


# --- models, kept in memory per worker process -----------------------------------------------

_MODELS: OrderedDict[tuple[str, str, str], organisms.Loaded] = OrderedDict()
_MODELS_LOCK = threading.Lock()


def render_device() -> str:
    return settings.MICROSCOPE_RENDER_DEVICE or ("cuda" if torch.cuda.is_available() else "cpu")


def model_load(model: Model, device: str) -> organisms.Loaded:
    """The model's network with the catalog's weights, loaded once per process and device."""
    try:
        organism = organisms.get(model.slug)
    except organisms.UnknownOrganism as exc:
        raise RenderFailure(str(exc)) from None
    if not model.weights_sha256:
        raise RenderFailure(organisms.missing_message(organism))
    key = (model.slug, model.weights_sha256, device)
    with _MODELS_LOCK:
        if key in _MODELS:
            _MODELS.move_to_end(key)
            return _MODELS[key]
        path = organisms.find_weights(organism, Path(settings.WEIGHTS_DIR))
        if path is None:
            raise RenderFailure(
                f"{organisms.missing_message(organism)} (on worker {socket.gethostname()}, "
                f"which looks in {settings.WEIGHTS_DIR})"
            )
        try:
            loaded = organisms.load(organism, path, device=device)
        except organisms.WeightsError as exc:
            raise RenderFailure(str(exc)) from None
        if loaded.weights_sha256 != model.weights_sha256:
            raise RenderFailure(
                f"the {model.slug} weights on worker {socket.gethostname()} ({path}, sha256 "
                f"{loaded.weights_sha256[:12]}...) are not the catalog's (sha256 "
                f"{model.weights_sha256[:12]}...): install the same file on every machine"
            )
        _MODELS[key] = loaded
        while len(_MODELS) > settings.MICROSCOPE_MODEL_CACHE:
            _MODELS.popitem(last=False)
        return loaded


# --- heartbeat and progress --------------------------------------------------------------------


@contextmanager
def heartbeat(job_id: int) -> Iterator[None]:
    """Write the job's heartbeat every few seconds from a thread while the block runs."""
    stop = threading.Event()
    interval = max(1.0, settings.MICROSCOPE_JOB_STALE_SECONDS / 6)

    def beat() -> None:
        try:
            while not stop.wait(interval):
                try:
                    services.render_job_beat(job_id=job_id)
                except Exception:  # a missed beat is harmless; the next one may pass
                    logger.warning("heartbeat of job %s failed", job_id, exc_info=True)
        finally:
            connection.close()

    thread = threading.Thread(target=beat, name=f"heartbeat-{job_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


class _Reporter:
    """Records progress on the job at most twice a second, and passes it on."""

    def __init__(self, job_id: int, also: Progress | None) -> None:
        self.job_id = job_id
        self.also = also
        self.last = 0.0
        self.done = self.total = 0

    def __call__(self, done: int, total: int) -> None:
        self.done, self.total = done, total
        now = time.monotonic()
        if now - self.last >= 0.5 or done >= total:
            self.last = now
            services.render_job_progress(job_id=self.job_id, done=done, total=total)
        if self.also is not None:
            self.also(done, total)


# --- the job ------------------------------------------------------------------------------------


def render_job_execute(
    *, job_id: int, task_id: str = "", progress: Progress | None = None
) -> Claim:
    """Claim the job and do it. Returns how the claim went; a failure is recorded on the job."""
    claim, job = services.render_job_claim(job_id=job_id, task_id=task_id)
    if claim is not Claim.CLAIMED:
        logger.info("job %s not claimed: %s", job_id, claim.value)
        return claim
    assert job is not None
    reporter = _Reporter(job.pk, progress)
    try:
        with heartbeat(job.pk):
            if job.kind == Kind.EXAMPLES:
                examples_run(job=job, progress=reporter)
            elif job.kind == Kind.WEIGHTS:
                weights_run(job=job, progress=reporter)
            elif job.kind == Kind.EVIDENCE:
                evidence_run(job=job, progress=reporter)
            else:
                featurevis_run(job=job, progress=reporter)
    except RenderFailure as exc:
        services.render_job_finish(job_id=job.pk, error=str(exc))
    except SoftTimeLimitExceeded:
        services.render_job_finish(
            job_id=job.pk,
            error=(
                f"stopped at the time limit ({settings.MICROSCOPE_RENDER_SOFT_TIME_LIMIT} s) "
                f"after {reporter.done} of {reporter.total}; what was rendered is kept: "
                f"ask again to render the rest"
            ),
        )
    except Exception as exc:
        logger.exception("job %s failed", job.pk)
        services.render_job_finish(job_id=job.pk, error=f"{type(exc).__name__}: {exc}")
    else:
        services.render_job_finish(job_id=job.pk)
    return claim


def _chunks(items: list[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def featurevis_run(*, job: RenderJob, progress: Progress) -> None:
    """Render the job's channels that have no artifact yet, a batch at a time."""
    layer = job.layer
    if layer is None:
        raise RenderFailure("a feature visualization job needs a layer")
    layer.model = job.model
    channels = list(services.job_channels(job, layer))
    identities = {
        c: services.featurevis_identity(kind=job.kind, layer=layer, channel=c, params=job.params)
        for c in channels
    }
    keys = {c: artifact_key(**identity) for c, identity in identities.items()}
    existing = services.artifact_keys_existing(keys.values())
    todo = [c for c in channels if keys[c] not in existing]
    done, total = len(channels) - len(todo), len(channels)
    progress(done, total)
    if not todo:
        return
    device = render_device()
    loaded = model_load(job.model, device)
    params = FeatureVisParams(
        objective=OBJECTIVE_BY_KIND[Kind(job.kind)],
        steps=job.params["steps"],
        size=job.params["size"],
        seed=job.params["seed"],
        lr=job.params["lr"],
    )
    neurons = {n.index: n for n in Neuron.objects.filter(layer=layer, index__in=todo)}
    batch = max(1, settings.MICROSCOPE_RENDER_BATCH // params.images_per_channel)
    for chunk in _chunks(todo, batch):
        images = render_channels(
            loaded.model, loaded.organism, layer.name, chunk, params,
            batch_size=len(chunk), device=device,
        )  # fmt: skip
        for channel in chunk:
            neuron = neurons[channel]
            neuron.layer = layer
            services.artifact_create(
                kind=job.kind,
                neuron=neuron,
                identity=identities[channel],
                images=[to_png(image) for image in images[channel]],
                job=job,
            )
        done += len(chunk)
        progress(done, total)


def _corpus_fingerprint(root: Path, names: list[str]) -> tuple[str, dict[str, str]]:
    """The corpus's identity by content: each file's sha256, and one over all (name, sha)."""
    shas = {name: organisms.file_sha256(root / name) for name in names}
    whole = hashlib.sha256("".join(f"{n}\t{s}\n" for n, s in shas.items()).encode()).hexdigest()
    return whole, shas


def _jpeg(root: Path, name: str, input_size: int) -> bytes:
    """The image as the model saw it (resized, centre-cropped), as a JPEG."""
    tensor = load_image(root / name, input_size)
    array = tensor.mul(255).round().clamp(0, 255).byte().permute(1, 2, 0).numpy()
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def examples_run(*, job: RenderJob, progress: Progress) -> None:
    """One sweep over the corpus for the job's layers; store each neuron's examples."""
    model = job.model
    layers: list[Layer] = [job.layer] if job.layer is not None else list(model.layers.all())
    for layer in layers:
        layer.model = model
    corpus = job.params["corpus"]
    root = services.corpus_path(corpus)
    if not root.is_dir():
        raise RenderFailure(f"{corpus} is not a folder on worker {socket.gethostname()}")
    names = list_images(root)
    if not names:
        raise RenderFailure(f"{corpus} holds no .jpg, .jpeg or .png image")
    corpus_sha256, shas = _corpus_fingerprint(root, names)
    wanted: dict[tuple[int, int], dict] = {}
    for layer in layers:
        for channel in services.job_channels(job, layer):
            wanted[(layer.pk, channel)] = services.examples_identity(
                layer=layer, channel=channel, corpus_sha256=corpus_sha256, params=job.params
            )
    keys = {where: artifact_key(**identity) for where, identity in wanted.items()}
    existing = services.artifact_keys_existing(keys.values())
    todo = {where for where, key in keys.items() if key not in existing}
    todo_layers = [
        layer for layer in layers if any((layer.pk, c) in todo for c in range(layer.channels))
    ]
    if not todo_layers:
        progress(len(names), len(names))
        return
    device = render_device()
    loaded = model_load(model, device)
    result = sweep(
        loaded.model,
        loaded.organism,
        root,
        layers=[layer.name for layer in todo_layers],
        k=job.params["k"],
        bins=job.params["bins"],
        batch_size=settings.MICROSCOPE_EXAMPLES_BATCH,
        device=device,
        progress=progress,
    )
    neurons = {(n.layer_id, n.index): n for n in Neuron.objects.filter(layer__in=todo_layers)}
    files: dict[int, str] = {}  # image index -> storage name, each image stored once

    def stored(index: int) -> str:
        if index not in files:
            name = result.images[index]
            sha = shas[name]
            files[index] = services.example_image_save(
                name=f"examples/{sha[:2]}/{sha}-{result.input_size}.jpg",
                content=_jpeg(root, name, result.input_size),
            )
        return files[index]

    artifacts = []
    for layer in todo_layers:
        examples = result.layers[layer.name]
        for channel in services.job_channels(job, layer):
            if (layer.pk, channel) not in todo:
                continue
            data = result.channel(layer.name, channel)
            for side in ("top", "bottom"):
                indices = examples.top_index if side == "top" else examples.bottom_index
                for entry, index in zip(data[side], indices[channel], strict=True):
                    entry["file"] = stored(int(index))
            data["corpus"] = corpus
            data["skipped"] = len(result.skipped)
            identity = wanted[(layer.pk, channel)]
            artifacts.append(
                Artifact(
                    kind=Kind.EXAMPLES,
                    layer=layer,
                    neuron=neurons[(layer.pk, channel)],
                    params=identity,
                    key=keys[(layer.pk, channel)],
                    data=data,
                    job=job,
                )
            )
    services.artifacts_bulk_create(artifacts=artifacts)


# --- connecting weights ---------------------------------------------------------------------

HEATMAP_PX = 48


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def weights_data(
    *, w: ExpandedWeights, direction: str, other: Layer, connections: list[Connection]
) -> dict:
    """One neuron's connections as stored: numbers, the kernel, and its heat map (a data:
    URI of a few hundred bytes, on one colour scale for the whole list)."""
    vmax = max((float(np.abs(c.kernel).max()) for c in connections), default=0.0)
    kh, kw = w.weights.shape[2:]
    return {
        "direction": direction,
        "layer": w.layer,
        "below": w.below,
        "other": other.name,
        "other_alias": other.alias,
        "count": w.weights.shape[1] if direction == services.INPUTS else len(w.channels),
        "kernel_size": [int(kh), int(kw)],
        "vmax": vmax,
        "connections": [
            {
                "channel": c.channel,
                "strength": c.strength,
                "sign": c.sign,
                "rank": c.rank,
                "kernel": np.round(c.kernel.astype(np.float64), 6).tolist(),
                "heatmap": _data_uri(heatmap_png(c.kernel, HEATMAP_PX, vmax=vmax or None)),
            }
            for c in connections
        ],
    }


def weights_run(*, job: RenderJob, progress: Progress) -> None:
    """Expanded weights of the job's layer from the one below: each of its neurons' strongest
    inputs, and each lower neuron's strongest outputs into it."""
    layer = job.layer
    if layer is None:
        raise RenderFailure("a weights job needs a layer")
    layer.model = job.model
    below = services.layer_below(layer)
    if below is None:
        raise RenderFailure(
            f"{layer.name} is the lowest significant layer of {job.model.slug}: "
            "nothing below it to connect"
        )
    below.model = job.model
    identities = services.weights_identities(layer=layer, below=below, params=job.params)
    keys = {where: artifact_key(**identity) for where, identity in identities.items()}
    existing = services.artifact_keys_existing(keys.values())
    todo = [where for where, key in keys.items() if key not in existing]
    progress(0, 3)
    if not todo:
        progress(3, 3)
        return
    device = render_device()
    loaded = model_load(job.model, device)
    w = expanded_weights(loaded.model, loaded.organism, layer.name, below=below.name, device=device)
    progress(1, 3)
    owners = {services.INPUTS: layer, services.OUTPUTS: below}
    neurons = {(n.layer_id, n.index): n for n in Neuron.objects.filter(layer__in=[layer, below])}
    top = job.params["top"]
    artifacts = []
    for direction, channel in todo:
        if direction == services.INPUTS:
            connections, other = strongest_inputs(w, channel, top), below
        else:
            connections, other = strongest_outputs(w, channel, top), layer
        owner = owners[direction]
        artifacts.append(
            Artifact(
                kind=Kind.WEIGHTS,
                layer=owner,
                neuron=neurons[(owner.pk, channel)],
                params=identities[direction, channel],
                key=keys[direction, channel],
                data=weights_data(w=w, direction=direction, other=other, connections=connections),
                job=job,
            )
        )
    progress(2, 3)
    services.artifacts_bulk_create(artifacts=artifacts)
    progress(3, 3)


# --- evidence for a circuit claim --------------------------------------------------------------


def _target_examples(target: Neuron, model: Model) -> Artifact:
    """The target's newest dataset examples under the catalog's weights; swept here first
    (its whole layer, over the configured corpus) where there are none yet."""

    def newest() -> Artifact | None:
        return (
            Artifact.objects.filter(
                neuron=target, kind=Kind.EXAMPLES, params__weights_sha256=model.weights_sha256
            )
            .order_by("-created", "-pk")
            .first()
        )

    found = newest()
    if found is not None:
        return found
    job = services.render_job_create(
        model=model, layer=target.layer, kind=Kind.EXAMPLES, params={}, enqueue=False
    )
    render_job_execute(job_id=job.pk)
    job.refresh_from_db()
    found = newest()
    if found is None:
        raise RenderFailure(
            f"no dataset examples of {target.short_ref} to test the claim on: sweeping "
            f"{job.params['corpus']} (job {job.pk}) failed: {job.error or job.status}"
        )
    return found


def _example_batch(entries: list[dict], input_size: int) -> torch.Tensor:
    """The stored example images (as the model saw them), [N, 3, H, W] in [0, 1]."""
    tensors = []
    for entry in entries:
        with default_storage.open(entry["file"]) as handle, Image.open(handle) as image:
            array = np.asarray(image.convert("RGB"), dtype=np.uint8)
        tensor = torch.from_numpy(array.copy()).permute(2, 0, 1).float().div_(255)
        if tuple(tensor.shape[1:]) != (input_size, input_size):
            tensor = torch.nn.functional.interpolate(
                tensor[None], size=(input_size, input_size), mode="bilinear", antialias=True
            )[0]
        tensors.append(tensor)
    return torch.stack(tensors)


def _failure_reason(exc: BaseException) -> str:
    if isinstance(exc, RenderFailure):
        return str(exc)
    if isinstance(exc, SoftTimeLimitExceeded):
        return f"stopped at the time limit ({settings.MICROSCOPE_RENDER_SOFT_TIME_LIMIT} s)"
    return f"{type(exc).__name__}: {exc}"


def evidence_run(*, job: RenderJob, progress: Progress) -> None:
    """Test a circuit claim's revision over its target's top dataset examples and store the
    evidence; a failure is recorded on the evidence too, in words."""
    evidence = claims.evidence_start(evidence_id=job.params["evidence"])
    if evidence is None:  # deleted, or done by an earlier attempt
        progress(1, 1)
        return
    try:
        evidence_compute(evidence=evidence, progress=progress)
    except BaseException as exc:
        claims.evidence_fail(evidence_id=evidence.pk, error=_failure_reason(exc))
        raise


def evidence_compute(*, evidence: Evidence, progress: Progress) -> None:
    revision = evidence.revision
    target = revision.claim.target
    model = target.layer.model
    terms = revision.terms.filter(role=Role.COMPONENT).select_related("neuron__layer")
    components = [
        Component(t.neuron.layer.name, t.neuron.index, t.coefficient, t.neuron.short_ref)
        for t in terms.order_by("position")
    ]
    if not components:
        raise RenderFailure("the claim's revision has no components to test")
    progress(0, 3)
    examples = _target_examples(target, model)
    entries = examples.data["top"]
    if not entries:
        raise RenderFailure(f"{target.short_ref} has no dataset examples to test the claim on")
    progress(1, 3)
    device = render_device()
    loaded = model_load(model, device)
    images = _example_batch(entries, examples.data.get("input_size", model.input_size))
    params = dict(evidence.params)
    try:
        result = circuit_evidence(
            loaded.model,
            loaded.organism,
            (target.layer.name, target.index),
            components,
            loaded.organism.preprocess(images.to(device)),
            seed=params["seed"],
            random_draws=params["random_draws"],
            reduce=params["reduce"],
            target_name=target.short_ref,
        )
    except ValueError as exc:
        raise RenderFailure(str(exc)) from None
    progress(2, 3)
    params.update(
        weights_sha256=loaded.weights_sha256,
        code_version=render.CODE_VERSION,
        examples_key=examples.key,
        corpus=examples.data.get("corpus", ""),
        images=[{"image": e["image"], "file": e["file"], "value": e["value"]} for e in entries],
        device=device,
    )
    claims.evidence_store(
        evidence_id=evidence.pk, params=params, result=result.to_dict(), verdict=result.verdict
    )
    progress(3, 3)
