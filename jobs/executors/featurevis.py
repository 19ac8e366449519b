"""Feature visualizations of a job's channels, a batch at a time."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from django.conf import settings

from jobs import params, storage, worker
from jobs.kinds import Progress, RenderFailure
from jobs.models import OBJECTIVE_BY_KIND, ArtifactKind, RenderJob, artifact_key
from neurons.models import Neuron
from render.featurevis import (
    CPU_IMAGES_PER_THREAD,
    CPU_THREADS,
    FeatureVisParams,
    made_on,
    render_channels,
    to_png,
)

# Grey levels of standard deviation: below it, an image is still its grey start (whose is
# 0.7-0.8; the least varied other preview of the MobileNetV2 atlas has 20).
FLAT_STD = 2.0


def _chunks(items: list[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _flatness(images: list[np.ndarray]) -> dict[str, bool]:
    """``{"flat": True}`` for a render that never left its grey start (the channel is
    silent there, so no gradient reached the image): pages show the neuron's top example
    instead. Measured on the MobileNetV2 preview atlas: 16 of 2,816 channels."""
    return {"flat": True} if all(image.std() < FLAT_STD for image in images) else {}


def _channels_text(channels: list[int]) -> str:
    if len(channels) == 1:
        return f"channel {channels[0]}"
    if channels == list(range(channels[0], channels[-1] + 1)):
        return f"channels {channels[0]}-{channels[-1]}"
    return f"{len(channels)} channels from {channels[0]}"


def featurevis_run(*, job: RenderJob, progress: Progress) -> None:
    """Render the job's channels that have no artifact yet, a batch at a time."""
    layer = job.layer
    if layer is None:
        raise RenderFailure("a feature visualization job needs a layer")
    layer.model = job.model
    channels = list(job.channels_of(layer))
    identities = {
        c: params.featurevis_identity(kind=job.kind, layer=layer, channel=c, params=job.params)
        for c in channels
    }
    todo = worker.missing({c: artifact_key(**identity) for c, identity in identities.items()})
    done, total = len(channels) - len(todo), len(channels)
    progress(done, total)
    if not todo:
        return
    device, loaded = worker.network(job.model)
    recipe = FeatureVisParams(
        objective=OBJECTIVE_BY_KIND[ArtifactKind(job.kind)],
        **{name: job.params[name] for name in ("steps", "size", "seed", "lr")},
        **{name: job.params.get(name, lucent) for name, lucent in params.RECIPE_DEFAULTS.items()},
    )
    neurons = {n.index: n for n in Neuron.objects.filter(layer=layer, index__in=todo)}
    environment = made_on(device)
    batch = max(1, settings.MICROSCOPE_RENDER_BATCH // recipe.images_per_channel)
    if device == "cpu":  # what one CPU batch optimizes: each is stored as it ends
        batch = min(batch, max(1, CPU_IMAGES_PER_THREAD * CPU_THREADS // recipe.images_per_channel))
    for chunk in _chunks(todo, batch):

        def on_step(rendering: list[int], step: int, done: int = done) -> None:
            where = _channels_text(rendering)
            progress(done, total, f"{where}: step {step} of {recipe.steps}")

        images = render_channels(
            loaded.model, loaded.organism, layer.name, chunk, recipe,
            batch_size=len(chunk), device=device, step_progress=on_step,
        )  # fmt: skip
        for channel in chunk:
            neuron = neurons[channel]
            neuron.layer = layer
            storage.artifact_create(
                kind=job.kind,
                neuron=neuron,
                identity=identities[channel],
                images=[to_png(image) for image in images[channel]],
                data={"made_on": environment, **_flatness(images[channel])},
                job=job,
            )
        done += len(chunk)
        progress(done, total)
