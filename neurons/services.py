"""Writes to the catalog: registering an organism measures its layers with torch (a
command's work, never a page's)."""

from __future__ import annotations

import itertools
import os
import secrets
import shutil
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path

import torch
from django.conf import settings
from django.db import transaction

from neurons.models import Layer, Model, Neuron
from render import organisms
from render.catalog import WeightsError
from render.organisms import LayerSpec, Organism
from render.weights import identity_skip

NEURON_BATCH = 2000


@cache
def layer_specs(slug: str) -> tuple[LayerSpec, ...]:
    """Every significant layer's shape and block, measured once per process by a forward
    pass, and which layers add the one below through an identity skip (random weights:
    neither depends on them)."""
    organism = organisms.get(slug)
    specs = organisms.describe(organism)
    model = organism.architecture().eval()
    modules = organism.modules(model)
    size = organism.input_size
    image = organism.preprocess(torch.zeros(1, 3, size, size))
    found = [specs[0]] if specs else []
    for lower, upper in itertools.pairwise(specs):
        skip = identity_skip(model, modules[lower.name], modules[upper.name], image)
        found.append(replace(upper, skip=skip))
    return tuple(found)


@dataclass(frozen=True)
class Registration:
    model: Model
    layers_created: int
    neurons_created: int
    weights_message: str


def weights_install(*, organism: Organism, source: Path | None, download: bool) -> str:
    """Put the organism's weights where workers look, checked; return their sha256.

    Returns "" when no weights are to be had. Raises WeightsError for a bad file.
    """
    weights_dir = Path(settings.WEIGHTS_DIR)
    if source is not None:
        loaded = organisms.load(organism, source)  # checks sha256 prefix and a strict load
        target = weights_dir / organism.weights_filename
        if source.resolve() != target.resolve():
            _install(source, target)
        return loaded.weights_sha256
    path = organisms.find_weights(organism, weights_dir)
    if path is None and download:
        path = organisms.download_weights(organism, weights_dir)
    if path is None:
        return ""
    if not organism.weights_sha256_prefix:
        # No published checksum says a file there is the right one (it may be a copy cut
        # short): it must load, strictly, as one given with --weights does.
        return organisms.load(organism, path).weights_sha256
    return organisms.check_weights(organism, path)


def _install(source: Path, target: Path) -> None:
    """Copy ``source`` to ``target`` whole or not at all: into a file beside it, renamed
    over it once complete, so a disk that fills up midway leaves the weights there intact."""
    # A name of its own: two installs at once never write into one partial file. (Not
    # mkstemp's: its file is its owner's alone, and workers may run as another user.)
    partial = target.with_name(f".{target.name}.{secrets.token_hex(8)}.partial")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, partial)
        os.replace(partial, target)
    except OSError as error:
        partial.unlink(missing_ok=True)
        raise WeightsError(
            f"could not copy the weights to {target}: {error.strerror or error}"
        ) from None


@transaction.atomic
def model_register(
    *,
    slug: str,
    weights: Path | None = None,
    download: bool = False,
    progress: Callable[[Layer], None] | None = None,
) -> Registration:
    """Register an organism with all its layers and neurons. Running it again changes nothing.

    Raises UnknownOrganism or WeightsError (nothing is stored then).
    """
    organism = organisms.get(slug)
    sha256 = weights_install(organism=organism, source=weights, download=download)
    model, _ = Model.objects.get_or_create(
        slug=slug,
        defaults={
            "title": organism.title,
            "description": organism.description,
            "input_size": organism.input_size,
        },
    )
    if sha256 and model.weights_sha256 != sha256:
        model.weights_sha256 = sha256
        model.save(update_fields=["weights_sha256"])

    layers_created = neurons_created = 0
    for position, spec in enumerate(layer_specs(slug)):
        layer, created = Layer.objects.update_or_create(
            model=model,
            name=spec.name,
            defaults={
                "alias": spec.alias,
                "position": position,
                "channels": spec.channels,
                "height": spec.height,
                "width": spec.width,
                "block": spec.block,
                "skip": spec.skip,
                "branches": spec.branches,
            },
        )
        layers_created += created
        existing = set(layer.neurons.values_list("index", flat=True))
        missing = [Neuron(layer=layer, index=i) for i in range(spec.channels) if i not in existing]
        Neuron.objects.bulk_create(missing, batch_size=NEURON_BATCH)
        neurons_created += len(missing)
        if progress:
            progress(layer)

    message = (
        f"weights sha256 {model.weights_sha256[:12]}..."
        if model.weights_sha256
        else organisms.missing_message(organism)
    )
    return Registration(model, layers_created, neurons_created, message)
