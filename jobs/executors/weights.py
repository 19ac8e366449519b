"""Connecting weights: a layer's expanded weights from the layer below, as each neuron's
strongest inputs and each lower neuron's strongest outputs."""

from __future__ import annotations

import base64
from typing import Any

import numpy as np

from jobs import params, storage, worker
from jobs.kinds import Progress, RenderFailure
from jobs.models import Artifact, ArtifactKind, RenderJob, artifact_key
from jobs.params import INPUTS
from neurons.models import Layer, Neuron
from neurons.selectors import layer_below
from render.weights import (
    Connection,
    ExpandedWeights,
    expanded_weights,
    heatmap_png,
    strongest_inputs,
    strongest_outputs,
)

HEATMAP_PX = 48


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def weights_data(
    *, w: ExpandedWeights, direction: str, other: Layer, connections: list[Connection]
) -> dict[str, Any]:
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
        "count": w.weights.shape[1] if direction == INPUTS else len(w.channels),
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
    progress(1, 3)
    neurons = {(n.layer_id, n.index): n for n in Neuron.objects.filter(layer__in=[layer, below])}
    top = job.params["top"]
    artifacts = []
    for direction, channel in todo:
        if direction == INPUTS:
            owner, other, connections = layer, below, strongest_inputs(w, channel, top)
        else:
            owner, other, connections = below, layer, strongest_outputs(w, channel, top)
        artifacts.append(
            Artifact(
                kind=ArtifactKind.WEIGHTS,
                layer=owner,
                neuron=neurons[(owner.pk, channel)],
                params=identities[direction, channel],
                key=keys[direction, channel],
                data=weights_data(w=w, direction=direction, other=other, connections=connections),
                job=job,
            )
        )
    progress(2, 3)
    storage.artifacts_bulk_create(artifacts=artifacts)
    progress(3, 3)
