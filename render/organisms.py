"""The model organisms as networks: build each one, load its weights, find its layers.

An organism is declared once, in :mod:`render.catalog` (torch-free, what the site reads);
here its architecture and preprocessing are imported and its weights loaded. Layer names
follow lucent's convention (module path joined by ``_``, e.g. ``features_3``) so that
lucent objectives such as ``"mixed4c:447"`` work. Channel counts and spatial sizes are
never typed by hand: :func:`describe` measures them with a forward pass.
"""

from __future__ import annotations

import importlib
import pickle
from collections.abc import Callable
from dataclasses import dataclass, fields
from functools import cache
from pathlib import Path

import torch
from torch import nn

from render.catalog import (
    Entry,
    LayerDecl,
    LayerSpec,
    UnknownOrganism,
    WeightsError,
    WeightsMissing,
    check_weights,
    file_sha256,
    find_weights,
    missing_message,
)
from render.catalog import get as catalog_get
from render.hooks import capture

__all__ = [
    "LayerDecl",
    "LayerSpec",
    "Loaded",
    "Organism",
    "UnknownOrganism",
    "WeightsError",
    "WeightsMissing",
    "check_weights",
    "describe",
    "download_weights",
    "file_sha256",
    "find_weights",
    "get",
    "load",
    "missing_message",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True, kw_only=True)
class Organism(Entry):
    """A catalog entry whose architecture and preprocessing are callables."""

    architecture: Callable[[], nn.Module]
    preprocess: Callable[[torch.Tensor], torch.Tensor]

    def modules(self, model: nn.Module, names: list[str] | None = None) -> dict[str, nn.Module]:
        """The hookable modules of the named layers (all significant layers by default)."""
        decls = self.layers if names is None else [self.layer(n) for n in names]
        return {d.name: model.get_submodule(d.module) for d in decls}


@dataclass(frozen=True)
class Loaded:
    organism: Organism
    model: nn.Module
    weights_sha256: str


def imagenet_normalize(x: torch.Tensor) -> torch.Tensor:
    mean = torch.tensor(IMAGENET_MEAN, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    return (x - mean) / std


def inceptionv1_preprocess(x: torch.Tensor) -> torch.Tensor:
    # Lucid's InceptionV1 was trained on [-117, 138] (lucent.optvis.transform).
    return x * 255 - 117


def inceptionv1() -> nn.Module:
    from lucent.modelzoo.inceptionv1.InceptionV1 import InceptionV1

    # Plain ReLUs: the "redirected" ones only help optimisation early on and change
    # gradients, which the evidence code must see as they are.
    return InceptionV1(pretrained=False, redirected_ReLU=False)


def efficientnet_lite0() -> nn.Module:
    from efficientnet_lite_pytorch import EfficientNet

    model = EfficientNet.from_name("efficientnet-lite0")
    for block in model._blocks:
        # Flag identity skips as torchvision does (render.weights.identity_skip reads it):
        # the block adds its input back exactly when its forward does.
        args = block._block_args
        stride = args.stride[0] if isinstance(args.stride, (list, tuple)) else args.stride
        block.use_res_connect = bool(
            block.id_skip and stride == 1 and args.input_filters == args.output_filters
        )
    return model


def efficientnet_lite_preprocess(x: torch.Tensor) -> torch.Tensor:
    # TensorFlow's EfficientNet-Lite: (pixel - 127) / 128 on [0, 255].
    return (x * 255 - 127) / 128


def _imported(path: str) -> Callable:
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def organism(entry: Entry) -> Organism:
    """The catalog entry with its architecture and preprocessing imported."""
    build = _imported(entry.architecture)
    kwargs = dict(entry.architecture_kwargs)
    values = {f.name: getattr(entry, f.name) for f in fields(entry)}
    values.update(architecture=lambda: build(**kwargs), preprocess=_imported(entry.preprocess))
    return Organism(**values)


@cache
def get(slug: str) -> Organism:
    """The organism of a catalog slug; raises UnknownOrganism."""
    return organism(catalog_get(slug))


@torch.no_grad()
def describe(organism: Organism) -> list[LayerSpec]:
    """Measure every significant layer's channels and spatial size with one forward pass.

    Uses the architecture with random weights: shapes do not depend on them.
    """
    model = organism.architecture().eval()
    size = organism.input_size
    with capture(organism.modules(model)) as outputs:
        model(organism.preprocess(torch.zeros(1, 3, size, size)))
    modules = organism.modules(model)
    specs = []
    for decl in organism.layers:
        _, channels, height, width = outputs[decl.name].shape
        module = modules[decl.name]
        specs.append(
            LayerSpec(
                decl.name, decl.alias, channels, height, width,
                block=type(module).__name__, branches=_branches(model, decl.module),
            )
        )  # fmt: skip
    return specs


BRANCH_ENDS = ("_1x1", "_3x3", "_5x5", "_pool_reduce")


def _branches(model: nn.Module, path: str) -> int:
    """Parallel paths of an Inception-style block: its children named ``branch*``
    (torchvision's), or, in lucent's InceptionV1, whose blocks only concatenate, the
    network's modules named ``<block>_1x1``, ``_3x3``, ``_5x5`` and ``_pool_reduce`` (its
    branches' last layers). 1 for a plain block."""
    module = model.get_submodule(path)
    explicit = [name for name, _ in module.named_children() if name.startswith("branch")]
    if explicit:
        return len(explicit)
    prefix = f"{path.rsplit('.', 1)[-1]}_"
    parent = model.get_submodule(path.rsplit(".", 1)[0]) if "." in path else model
    ends = {
        end
        for name, _ in parent.named_children()
        if name.startswith(prefix)
        for end in BRANCH_ENDS
        if name.endswith(end)
    }
    return len(ends) if len(ends) > 1 else 1


def download_weights(organism: Organism, weights_dir: Path) -> Path:
    """Fetch the weights from their published URL into ``weights_dir``."""
    if not organism.weights_url:
        raise WeightsMissing(missing_message(organism))
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


# What torch.load and load_state_dict raise for a file that is no state dict: not a pickle
# (an empty or text file: /etc/passwd is an IndexError), a pickle of something else, or one
# weights_only refuses.
NOT_WEIGHTS = (pickle.UnpicklingError, EOFError, TypeError, AttributeError, KeyError, IndexError)


def load(organism: Organism, path: Path, device: str | torch.device = "cpu") -> Loaded:
    """Build the organism, load its weights strictly, and put it in eval mode."""
    sha256 = check_weights(organism, path)
    model = organism.architecture()
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        model.load_state_dict(state, strict=True)
    except NOT_WEIGHTS as exc:  # torch's own message can be empty, or advise an unsafe load
        raise WeightsError(
            f"{path} does not load into {organism.slug}: it is not a PyTorch state dict "
            f"({type(exc).__name__})"
        ) from exc
    except (RuntimeError, ValueError, OSError) as exc:
        raise WeightsError(f"{path} does not load into {organism.slug}: {exc}") from exc
    # A NaN or an infinity loads like any number, and then every render, example and
    # evidence of the model is NaN.
    for name, tensor in model.state_dict().items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise WeightsError(
                f"{path} does not load into {organism.slug}: {name} holds NaN or infinite values"
            )
    model = model.to(device).eval()
    for param in model.parameters():
        param.requires_grad_(False)
    return Loaded(organism, model, sha256)
