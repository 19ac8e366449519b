"""Connecting weights: a layer's expanded weights from the layer below, as each neuron's
strongest inputs and each lower neuron's strongest outputs. Signs and heat maps are what
each input adds at the upper neuron's peaks over a sample of the corpus (kernel times the
input there); where the corpus is not on the worker, the kernel itself (its sum's sign)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from jobs import params, storage, worker
from jobs.executors import png_data_uri
from jobs.kinds import Progress, RenderFailure
from jobs.models import Artifact, ArtifactKind, RenderJob, artifact_key
from jobs.params import INPUTS
from neurons.models import Layer, Neuron
from neurons.selectors import layer_below
from render.examples import list_images, load_image
from render.hooks import capture, stop_after
from render.organisms import Loaded
from render.weights import (
    Connection,
    ExpandedWeights,
    contribution_maps,
    expanded_weights,
    heatmap_png,
    identity_skip,
    strongest_inputs,
    strongest_outputs,
)

HEATMAP_PX = 48
SIGN_IMAGES = 32  # corpus images (evenly spaced by name) the signs are measured on
SIGN_TOP = 8  # of those, each upper neuron's most active, where its peak is read


def weights_data(
    *,
    w: ExpandedWeights,
    direction: str,
    other: Layer,
    connections: list[Connection],
    skip: int | None = None,
    signs_from: str = "",
) -> dict[str, Any]:
    """One neuron's connections as stored: numbers, the kernel, what it adds on the data,
    and the heat map of that (a data: URI of a few hundred bytes, on one colour scale for
    the whole list). ``skip``: the channel that reaches this neuron (or that this neuron
    reaches) through an identity skip."""
    vmax = max((float(np.abs(c.drawn).max()) for c in connections), default=0.0)
    kh, kw = w.weights.shape[2:]
    return {
        "direction": direction,
        "layer": w.layer,
        "below": w.below,
        "other": other.name,
        "other_alias": other.alias,
        "count": w.weights.shape[1] if direction == INPUTS else len(w.channels),
        "kernel_size": [int(kh), int(kw)],
        "vmax": vmax,
        "signs_from": signs_from,
        "connections": [
            {
                "channel": c.channel,
                "strength": c.strength,
                "sign": c.sign,
                "rank": c.rank,
                "skip": c.channel == skip,
                "contribution": float(c.drawn.sum(dtype=np.float64)),
                "kernel": np.round(c.kernel.astype(np.float64), 6).tolist(),
                "heatmap": png_data_uri(heatmap_png(c.drawn, HEATMAP_PX, vmax=vmax or None)),
            }
            for c in connections
        ],
    }


def _identity_skip(loaded: Loaded, layer: Layer, below: Layer, device: str) -> bool:
    """Whether each channel of ``below`` reaches its namesake in ``layer`` by a skip."""
    organism = loaded.organism
    upper, lower = (
        loaded.model.get_submodule(organism.layer(x.name).module) for x in (layer, below)
    )
    probe = torch.zeros(1, 3, organism.input_size, organism.input_size, device=device)
    return identity_skip(loaded.model, lower, upper, probe)


def _sign_data(
    loaded: Loaded, layer: Layer, below: Layer, corpus: str, device: str
) -> tuple[torch.Tensor, torch.Tensor, str] | None:
    """Both layers' activations on a sample of the corpus, and where they come from; None
    where the corpus is not on this worker."""
    root = params.corpus_path(corpus)
    names = list_images(root) if root.is_dir() else []
    if not names:
        return None
    picked = names[:: max(1, len(names) // SIGN_IMAGES)][:SIGN_IMAGES]
    organism = loaded.organism
    images = torch.stack([load_image(root / name, organism.input_size) for name in picked])
    modules = organism.modules(loaded.model, [layer.name, below.name])
    with torch.no_grad(), capture(modules) as out, stop_after(modules[layer.name]):
        loaded.model(organism.preprocess(images.to(device)))
    return out[below.name].cpu(), out[layer.name].cpu(), f"{len(picked)} images of {corpus}"


def _layers(job: RenderJob) -> tuple[Layer, Layer]:
    layer = job.layer
    if layer is None:
        raise RenderFailure("a weights job needs a layer")
    below = layer_below(layer)
    if below is None:
        raise RenderFailure(
            f"{layer.name} is the lowest significant layer of {job.model.slug}: "
            "nothing below it to connect"
        )
    layer.model = below.model = job.model
    return layer, below


def weights_run(*, job: RenderJob, progress: Progress) -> None:
    """Expanded weights of the job's layer from the one below: each of its neurons' strongest
    inputs, and each lower neuron's strongest outputs into it."""
    layer, below = _layers(job)
    identities = params.weights_identities(layer=layer, below=below, params=job.params)
    keys = {where: artifact_key(**identity) for where, identity in identities.items()}
    todo = worker.missing(keys)
    progress(0, 3)
    if not todo:
        progress(3, 3)
        return
    device, loaded = worker.network(job.model)
    w = expanded_weights(loaded.model, loaded.organism, layer.name, below=below.name, device=device)
    data = _sign_data(loaded, layer, below, job.params.get("corpus", ""), device)
    maps, signs_from = None, "kernel sums (the corpus is not on this worker)"
    if data is not None:
        maps, signs_from = contribution_maps(w, data[0], data[1], SIGN_TOP), data[2]
    skips = layer.channels == below.channels and _identity_skip(loaded, layer, below, device)
    progress(1, 3)
    neurons = {(n.layer_id, n.index): n for n in Neuron.objects.filter(layer__in=[layer, below])}
    top = job.params["top"]
    artifacts = []
    for direction, channel in todo:
        if direction == INPUTS:
            row = None if maps is None else maps[w.channels.index(channel)]
            connections = strongest_inputs(w, channel, top, row)
            owner, other = layer, below
        else:
            connections = strongest_outputs(w, channel, top, maps)
            owner, other = below, layer
        artifacts.append(
            Artifact(
                kind=ArtifactKind.WEIGHTS,
                layer=owner,
                neuron=neurons[(owner.pk, channel)],
                params=identities[direction, channel],
                key=keys[direction, channel],
                data=weights_data(
                    w=w,
                    direction=direction,
                    other=other,
                    connections=connections,
                    skip=channel if skips else None,
                    signs_from=signs_from,
                ),
                job=job,
            )
        )
    progress(2, 3)
    storage.artifacts_bulk_create(artifacts=artifacts)
    progress(3, 3)
