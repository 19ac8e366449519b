"""What every kind's worker code shares: the device, the models kept in memory, and the
artifacts a job still has to make. Imports torch: workers and ``--sync`` commands only."""

from __future__ import annotations

import socket
import threading
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import TypeVar

import torch
from django.conf import settings

from jobs.kinds import RenderFailure
from jobs.storage import artifact_keys_existing
from neurons.models import Model
from render import organisms

__all__ = ["missing", "model_load", "network", "render_device"]

Where = TypeVar("Where")

_MODELS: OrderedDict[tuple[str, str, str], organisms.Loaded] = OrderedDict()
_MODELS_LOCK = threading.Lock()


def render_device() -> str:
    """The device this worker renders on: MICROSCOPE_RENDER_DEVICE's, checked to be here."""
    device = settings.MICROSCOPE_RENDER_DEVICE or ("cuda" if torch.cuda.is_available() else "cpu")
    kind, _, index = device.partition(":")
    if kind == "cuda" and int(index or 0) >= torch.cuda.device_count():
        raise RenderFailure(
            f"MICROSCOPE_RENDER_DEVICE={device}, but worker {socket.gethostname()} has "
            f"{torch.cuda.device_count()} CUDA GPU(s) that torch can use"
        )
    if kind == "mps" and not torch.backends.mps.is_available():
        raise RenderFailure(
            f"MICROSCOPE_RENDER_DEVICE=mps, but worker {socket.gethostname()} has no MPS device"
        )
    return device


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


def network(model: Model) -> tuple[str, organisms.Loaded]:
    """The device to render on and the model's network there."""
    device = render_device()
    return device, model_load(model, device)


def missing(keys: Mapping[Where, str]) -> list[Where]:
    """The places (channels, (layer, channel) pairs...) whose artifact key is not stored."""
    existing = artifact_keys_existing(keys.values())
    return [where for where, key in keys.items() if key not in existing]
