"""Which channels of every significant layer fire most on one image, and where.

Plain torch: one forward pass with every layer captured (``render.hooks.capture``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from render.hooks import capture
from render.organisms import Organism

__all__ = ["Firing", "LayerFiring", "explore"]


@dataclass(frozen=True)
class Firing:
    channel: int
    peak: float  # the channel's highest activation over the layer's positions
    mean: float  # its mean over them
    pos: tuple[int, int]  # (row, column) of the peak
    map: np.ndarray  # height x width, the activation divided by the peak, clipped to [0, 1]


@dataclass(frozen=True)
class LayerFiring:
    layer: str
    alias: str
    height: int
    width: int
    top: list[Firing]


def explore(
    model: nn.Module, organism: Organism, image: torch.Tensor, *, top: int = 8
) -> list[LayerFiring]:
    """The ``top`` channels of each significant layer by their peak activation on ``image``
    (``3 x size x size`` in [0, 1], as ``render.examples.load_image`` gives it), with
    their activation maps."""
    if image.dim() != 3 or image.shape[0] != 3:
        raise ValueError(f"expected a 3 x H x W image, got {tuple(image.shape)}")
    device = next(model.parameters()).device
    with torch.no_grad(), capture(organism.modules(model)) as outputs:
        model(organism.preprocess(image[None].to(device)))
        found = []
        for decl in organism.layers:
            acts = outputs[decl.name][0].float()  # C x H x W
            _, height, width = acts.shape
            flat = acts.flatten(1)
            peaks, where = flat.max(dim=1)
            order = torch.argsort(peaks, descending=True)[:top]
            firings = []
            for c in order.tolist():
                peak = float(peaks[c])
                scale = peak if peak > 0 else 1.0
                heat = (acts[c] / scale).clamp(0, 1).cpu().numpy()
                row, col = divmod(int(where[c]), width)
                firings.append(Firing(c, peak, float(flat[c].mean()), (row, col), heat))
            found.append(LayerFiring(decl.name, decl.alias, height, width, firings))
    return found
