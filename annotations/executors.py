"""Circuit evidence, as workers compute it (torch): a claim's revision tested against the
model over its target's top dataset examples and a random sample of the corpus. The job
kind is declared in ``annotations.apps``; ``jobs`` runs it without knowing what a claim
is."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from django.core.files.storage import default_storage
from PIL import Image

import render
from annotations import services as claims
from annotations.models import Evidence, Role
from jobs import params as jobs_params
from jobs import worker
from jobs.kinds import Progress, RenderFailure
from jobs.models import Artifact, ArtifactKind, RenderJob
from jobs.planning import render_job_create
from jobs.runner import failure_reason, render_job_execute
from neurons.models import Model, Neuron
from render.evidence import Component, circuit_evidence
from render.examples import list_images, load_image


def _target_examples(target: Neuron, model: Model) -> Artifact:
    """The target's newest dataset examples under the catalog's weights; swept here first
    (its whole layer, over the configured corpus) where there are none yet."""

    def newest() -> Artifact | None:
        return (
            Artifact.objects.filter(
                neuron=target,
                kind=ArtifactKind.EXAMPLES,
                params__weights_sha256=model.weights_sha256,
            )
            .order_by("-created", "-pk")
            .first()
        )

    found = newest()
    if found is not None:
        return found
    job = render_job_create(
        model=model, layer=target.layer, kind=ArtifactKind.EXAMPLES, params={}, enqueue=False
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


def _swept_batch(root: Path, names: list[str], input_size: int) -> torch.Tensor:
    """Corpus images exactly as the sweep fed them to the model, [N, 3, S, S] in [0, 1]."""
    return torch.stack([load_image(root / name, input_size) for name in names])


def _stored_batch(entries: list[dict], input_size: int) -> torch.Tensor:
    """The stored copies of example images (JPEGs of what the model saw), where the
    corpus is not on this worker."""
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


def _images(
    examples: Artifact, input_size: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor | None, dict[str, object]]:
    """The target's top examples and as many other corpus images drawn at random (seeded),
    as the sweep read them; where the corpus is not here, the stored copies of the top
    examples and no random sample. Also what to record of them."""
    entries = examples.data["top"]
    names = [e["image"] for e in entries]
    root = jobs_params.corpus_path(examples.data.get("corpus", ""))
    if not all((root / name).is_file() for name in names):
        top = _stored_batch(entries, input_size)
        return top, None, {"images_from": "stored copies", "random_images": []}
    others = [n for n in list_images(root) if n not in set(names)]
    rng = np.random.default_rng(seed)
    picked = sorted(rng.choice(others, size=min(len(names), len(others)), replace=False))
    sample = _swept_batch(root, picked, input_size) if picked else None
    top = _swept_batch(root, names, input_size)
    return top, sample, {"images_from": "corpus", "random_images": list(picked)}


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
        claims.evidence_fail(evidence_id=evidence.pk, error=failure_reason(exc))
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
    device, loaded = worker.network(model)
    params = dict(evidence.params)
    size = examples.data.get("input_size", model.input_size)
    images, sample, used = _images(examples, size, params["seed"])
    try:
        result = circuit_evidence(
            loaded.model,
            loaded.organism,
            (target.layer.name, target.index),
            components,
            loaded.organism.preprocess(images.to(device)),
            random_images=None if sample is None else loaded.organism.preprocess(sample.to(device)),
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
        **used,
    )
    claims.evidence_store(
        evidence_id=evidence.pk, params=params, result=result.to_dict(), verdict=result.verdict
    )
    progress(3, 3)
