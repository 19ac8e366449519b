"""Dataset examples: one sweep over a corpus for a job's layers."""

from __future__ import annotations

import hashlib
import io
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from PIL import Image

from jobs import params, storage, worker
from jobs.kinds import Progress, RenderFailure
from jobs.models import Artifact, ArtifactKind, RenderJob, artifact_key
from neurons.models import Layer, Neuron
from render import catalog
from render.examples import SweepResult, list_images, load_image, sweep


@dataclass(frozen=True)
class _Corpus:
    name: str  # as the job gives it
    root: Path
    images: list[str]
    sha256: str  # of the whole corpus, by content
    shas: dict[str, str]  # of each image


def _corpus(corpus: str) -> _Corpus:
    """The job's corpus folder and its identity by content: each file's sha256, and one
    over all (name, sha)."""
    root = params.corpus_path(corpus)
    if not root.is_dir():
        raise RenderFailure(f"{corpus} is not a folder on worker {socket.gethostname()}")
    names = list_images(root)
    if not names:
        raise RenderFailure(f"{corpus} holds no .jpg, .jpeg or .png image")
    shas = {name: catalog.file_sha256(root / name) for name in names}
    whole = hashlib.sha256("".join(f"{n}\t{s}\n" for n, s in shas.items()).encode()).hexdigest()
    return _Corpus(corpus, root, names, whole, shas)


def _jpeg(root: Path, name: str, input_size: int) -> bytes:
    """The image as the model saw it (resized, centre-cropped), as a JPEG."""
    tensor = load_image(root / name, input_size)
    array = tensor.mul(255).round().clamp(0, 255).byte().permute(1, 2, 0).numpy()
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


CROP_SIDE = 96  # pixels of a top example's crop, the thumbnail of a neuron not visualized


class _ImageFiles:
    """Corpus images stored in media storage on first use, each once (by content), and
    crops of them (the thumbnails of neurons without a feature visualization)."""

    def __init__(self, corpus: _Corpus, result: SweepResult) -> None:
        self.corpus, self.result = corpus, result
        self.files: dict[int, str] = {}
        self.jpegs: dict[int, bytes] = {}

    def _name(self, index: int) -> str:
        sha = self.corpus.shas[self.result.images[index]]
        return f"examples/{sha[:2]}/{sha}-{self.result.input_size}"

    def __call__(self, index: int) -> str:
        if index not in self.files:
            name = self.result.images[index]
            self.jpegs[index] = _jpeg(self.corpus.root, name, self.result.input_size)
            self.files[index] = storage.example_image_save(
                name=f"{self._name(index)}.jpg", content=self.jpegs[index]
            )
        return self.files[index]

    def crop(self, index: int, box: list[int]) -> str:
        """The square ``box`` (left, top, right, bottom) of the image, CROP_SIDE wide."""
        self(index)
        left, top, right, bottom = (int(v) for v in box)
        name = f"{self._name(index)}-{left}-{top}-{right}-{bottom}.jpg"
        with Image.open(io.BytesIO(self.jpegs[index])) as image:
            crop = image.crop((left, top, right, bottom))
            crop = crop.resize((CROP_SIDE, CROP_SIDE), Image.Resampling.LANCZOS)
            buffer = io.BytesIO()
            crop.save(buffer, format="JPEG", quality=90)
        return storage.example_image_save(name=name, content=buffer.getvalue())


def _channel_data(
    result: SweepResult, layer: Layer, channel: int, files: _ImageFiles, corpus: _Corpus
) -> dict[str, Any]:
    data = result.channel(layer.name, channel)
    examples = result.layers[layer.name]
    for side, indices in (("top", examples.top_index), ("bottom", examples.bottom_index)):
        for entry, index in zip(data[side], indices[channel], strict=True):
            entry["file"] = files(int(index))
    data["corpus"] = corpus.name
    data["skipped"] = len(result.skipped)
    return data


def _top_crop(data: dict[str, Any], result: SweepResult, layer: Layer, channel: int,
              files: _ImageFiles) -> list[str]:  # fmt: skip
    """The top example's crop, as the artifact's one file: the neuron's thumbnail until it
    has a feature visualization. None (an empty list) for a channel silent on every
    image: pages then show its top image whole."""
    top = data["top"]
    if not top or top[0]["value"] <= 0:
        return []
    index = int(result.layers[layer.name].top_index[channel][0])
    return [files.crop(index, top[0]["box"])]


def examples_run(*, job: RenderJob, progress: Progress) -> None:
    """One sweep over the corpus for the job's layers; store each neuron's examples."""
    model = job.model
    layers: list[Layer] = [job.layer] if job.layer is not None else list(model.layers.all())
    for layer in layers:
        layer.model = model
    corpus = _corpus(job.params["corpus"])
    identities = {
        (layer, channel): params.examples_identity(
            layer=layer, channel=channel, corpus_sha256=corpus.sha256, params=job.params
        )
        for layer in layers
        for channel in job.channels_of(layer)
    }
    keys = {where: artifact_key(**identity) for where, identity in identities.items()}
    todo = worker.missing(keys)
    todo_layers = list(dict.fromkeys(layer for layer, _ in todo))
    if not todo_layers:
        progress(len(corpus.images), len(corpus.images))
        return
    device, loaded = worker.network(model)
    result = sweep(
        loaded.model,
        loaded.organism,
        corpus.root,
        layers=[layer.name for layer in todo_layers],
        k=job.params["k"],
        bins=job.params["bins"],
        batch_size=settings.MICROSCOPE_EXAMPLES_BATCH,
        device=device,
        progress=progress,
    )
    neurons = {(n.layer_id, n.index): n for n in Neuron.objects.filter(layer__in=todo_layers)}
    files = _ImageFiles(corpus, result)
    artifacts = []
    for layer, channel in todo:
        data = _channel_data(result, layer, channel, files, corpus)
        artifacts.append(
            Artifact(
                kind=ArtifactKind.EXAMPLES,
                layer=layer,
                neuron=neurons[(layer.pk, channel)],
                params=identities[layer, channel],
                key=keys[layer, channel],
                files=_top_crop(data, result, layer, channel, files),
                data=data,
                job=job,
            )
        )
    storage.artifacts_bulk_create(artifacts=artifacts)
