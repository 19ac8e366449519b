"""Explorations: one image through every significant layer of a model, the most active
channels of each stored with their activation maps as heat maps."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from django.core.files.storage import default_storage
from PIL import Image

from jobs import worker
from jobs.executors import png_data_uri
from jobs.explore import TOP
from jobs.kinds import Progress, RenderFailure
from jobs.models import Exploration, RenderJob
from render.examples import load_image
from render.explore import LayerFiring, explore

HEAT = (255, 64, 0)  # the heat map's colour; its alpha is the activation


def heatmap_uri(values: np.ndarray) -> str:
    """An RGBA PNG, as a data: URI, of values in [0, 1] (alpha 0 to 0.85)."""
    alpha = (np.clip(values, 0, 1) * 217).round().astype(np.uint8)
    rgba = np.zeros((*values.shape, 4), dtype=np.uint8)
    rgba[..., :3] = HEAT
    rgba[..., 3] = alpha
    buffer = io.BytesIO()
    Image.fromarray(rgba, mode="RGBA").save(buffer, format="PNG", optimize=True)
    return png_data_uri(buffer.getvalue())


def result_of(layers: list[LayerFiring], input_size: int) -> dict[str, Any]:
    return {
        "input_size": input_size,
        "layers": [
            {
                "layer": layer.layer,
                "alias": layer.alias,
                "height": layer.height,
                "width": layer.width,
                "channels": [
                    {
                        "channel": f.channel,
                        "peak": round(f.peak, 4),
                        "mean": round(f.mean, 4),
                        "pos": list(f.pos),
                        "heatmap": heatmap_uri(f.map),
                    }
                    for f in layer.top
                ],
            }
            for layer in layers
        ],
    }


def explore_run(*, job: RenderJob, progress: Progress) -> None:
    """Compute an exploration, or copy the result of one with the same key."""
    exploration = (
        Exploration.objects.select_related("upload", "model")
        .filter(pk=job.params["exploration"])
        .first()
    )
    if exploration is None or exploration.result:  # deleted, or done by an earlier attempt
        progress(1, 1)
        return
    twin = Exploration.objects.filter(key=exploration.key).exclude(result={}).first()
    if twin is not None:
        result = twin.result
    else:
        _, loaded = worker.network(exploration.model)
        try:
            with default_storage.open(exploration.upload.file) as stored:
                image = load_image(io.BytesIO(stored.read()), loaded.organism.input_size)
        except FileNotFoundError:
            raise RenderFailure("the uploaded image was deleted") from None
        layers = explore(loaded.model, loaded.organism, image, top=TOP)
        result = result_of(layers, loaded.organism.input_size)
    # Not over a newer request's key (new weights meanwhile): that one is computed again.
    Exploration.objects.filter(pk=exploration.pk, key=exploration.key).update(result=result)
    progress(1, 1)
