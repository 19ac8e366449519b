"""A job's parameters, checked, and the identity of each artifact it makes.

An artifact's identity is everything that made it; its hash (``jobs.models.artifact_key``)
is the artifact's key, so nothing is rendered twice. Torch-free: pages and the API plan
renders with these.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError

import render
from jobs.models import OBJECTIVE_BY_KIND, ArtifactKind
from neurons.models import Layer
from render.params import FeatureVisParams

EXAMPLES_K = 16
EXAMPLES_BINS = 50
# Connections listed per neuron and direction on its page.
WEIGHTS_TOP = 10
WEIGHTS_TOP_MAX = 64
INPUTS, OUTPUTS = "inputs", "outputs"
FEATUREVIS_FIELDS = ("steps", "size", "seed", "lr", "upsample", "pre_relu_steps")
# Recipe fields stored (in a job's params and an artifact's identity) only where they differ
# from lucent's recipe, their value here: every key made before they existed stays as it was.
RECIPE_DEFAULTS: dict[str, Any] = {"upsample": True, "pre_relu_steps": 0}

# Quality tiers of feature visualization: a preset of parameters each. "full" is lucent's
# recipe (its steps settable: MICROSCOPE_RENDER_STEPS); "preview" is fast enough to cover a
# whole model on a CPU (bench/atlas.py), fed to the model at its own size.
TIERS = ("preview", "full")
TIER_FIELDS = ("steps", "size", "lr")  # with RECIPE_DEFAULTS, what tells the tiers apart
# 8 steps on the pre-activation: a third of MobileNetV2's features_18 is zero everywhere on
# the grey start, and would stay grey (bench/atlas.py).
PREVIEW = {"steps": 32, "size": 96, "lr": 0.1, "upsample": False, "pre_relu_steps": 8}
# The preview of a layer that sees the image at half its resolution or finer (MobileNetV2's
# features_0 and features_1, InceptionV1's conv2d0): its units see 3 to 7 pixels, and what
# they want is saturated colour and edges a pixel wide, which 32 steps at lr 0.1 do not
# reach. With the common preview, 0 of features_0's 32 previews beat the corpus's best
# photo and 6 of features_1's 16; with this one, 26 and 16, for 10 s of the whole atlas
# (bench/atlas.py). Without lucent's transforms features_0 got 30, but features_1's images
# lost their oriented stripes to noise.
PREVIEW_FINE = {**PREVIEW, "steps": 128, "lr": 0.5}


def fine(layer: Layer) -> bool:
    """Whether ``layer`` sees the image at half its resolution or finer (stride 1 or 2,
    padded or not: 224 px to 112 or 111), not a quarter (stride 4: 56)."""
    return 5 * max(layer.height, layer.width) >= 2 * layer.model.input_size


def tier_params(tier: str, layer: Layer | None = None) -> dict[str, Any]:
    """The feature vis parameters of a tier, checked; for ``layer``, where the tier has a
    recipe of its own for it (the preview of a fine layer)."""
    if tier == "preview":
        return featurevis_params(**(PREVIEW_FINE if layer is not None and fine(layer) else PREVIEW))
    if tier == "full":
        return featurevis_params()
    raise ValidationError({"tier": f"unknown tier {tier!r}; choose one of {', '.join(TIERS)}"})


def tier_recipes(tier: str) -> list[dict[str, Any]]:
    """Every recipe of a tier, whatever the layer."""
    return (
        [featurevis_params(**PREVIEW), featurevis_params(**PREVIEW_FINE)]
        if tier == "preview"
        else [tier_params(tier)]
    )


def tier_of(params: Mapping[str, Any]) -> str:
    """What a feature visualization's parameters amount to: "preview", "full" or "custom".
    Any seed; steps, size, lr and the fields of RECIPE_DEFAULTS decide."""
    for tier in TIERS:
        for wanted in tier_recipes(tier):
            same = all(params.get(k) == wanted[k] for k in TIER_FIELDS)
            if same and recipe_extras(params) == recipe_extras(wanted):
                return tier
    return "custom"


def recipe_extras(params: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of RECIPE_DEFAULTS that ``params`` sets to other than lucent's value."""
    return {
        name: params[name]
        for name, default in RECIPE_DEFAULTS.items()
        if params.get(name, default) != default
    }


def _picked(params: Mapping[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    return {name: params[name] for name in names if name in params}


def _number(field: str, value: Any, kind: type) -> Any:
    # bool is an int to Python, not to a person asking for 'steps'.
    if isinstance(value, bool) or not isinstance(value, (int, float) if kind is float else int):
        raise ValidationError({field: f"{field} must be a number, got {value!r}"})
    return kind(value)


# What one job may ask for: a size or step count past these would only exhaust a worker,
# and numpy's RandomState takes seeds below 2**32.
FEATUREVIS_MAX = {"steps": 4096, "size": 512, "seed": 2**31 - 1}


def featurevis_params(
    *,
    steps: int | None = None,
    size: int | None = None,
    seed: int = 0,
    lr: float = 0.05,
    upsample: bool = True,
    pre_relu_steps: int = 0,
) -> dict[str, Any]:
    """A job's feature vis parameters, checked; defaults from settings."""
    if not isinstance(upsample, bool):
        raise ValidationError({"upsample": f"upsample must be true or false, got {upsample!r}"})
    params = FeatureVisParams(
        steps=_number("steps", settings.MICROSCOPE_RENDER_STEPS if steps is None else steps, int),
        size=_number("size", settings.MICROSCOPE_RENDER_SIZE if size is None else size, int),
        seed=_number("seed", seed, int),
        lr=_number("lr", lr, float),
        upsample=upsample,
        pre_relu_steps=_number("pre_relu_steps", pre_relu_steps, int),
    )
    try:
        params.validate()
    except ValueError as exc:
        field = str(exc).split()[0]
        raise ValidationError(
            {field if field in FEATUREVIS_FIELDS else "params": str(exc)}
        ) from None
    checked = {"steps": params.steps, "size": params.size, "seed": params.seed, "lr": params.lr}
    for name, most in FEATUREVIS_MAX.items():
        if checked[name] > most:
            raise ValidationError({name: f"{name} must be at most {most}, got {checked[name]}"})
    return checked | recipe_extras({name: getattr(params, name) for name in RECIPE_DEFAULTS})


def examples_params(
    *, corpus: str | None = None, k: int = EXAMPLES_K, bins: int = EXAMPLES_BINS
) -> dict[str, Any]:
    """A job's dataset example parameters. ``corpus`` is a folder as the workers see it."""
    corpus = corpus or settings.MICROSCOPE_EXAMPLES_DIR
    k, bins = _number("k", k, int), _number("bins", bins, int)
    if k < 1 or bins < 1:
        raise ValidationError({"params": f"k and bins must be at least 1, got k={k}, bins={bins}"})
    return {"corpus": str(corpus), "k": k, "bins": bins}


def corpus_path(corpus: str) -> Path:
    """A corpus folder; a relative one is relative to the project (``demo/photos``)."""
    path = Path(corpus).expanduser()
    return path if path.is_absolute() else Path(settings.BASE_DIR) / path


def weights_params(*, top: int = WEIGHTS_TOP, corpus: str | None = None) -> dict[str, Any]:
    """A weights job's parameters: how many connections to keep per neuron and direction,
    and the corpus (a folder as the workers see it) whose images give the signs."""
    top = _number("top", top, int)
    if not 1 <= top <= WEIGHTS_TOP_MAX:
        raise ValidationError({"params": f"top must be 1-{WEIGHTS_TOP_MAX}, got {top}"})
    corpus = corpus or settings.MICROSCOPE_EXAMPLES_DIR
    if not isinstance(corpus, str):
        raise ValidationError({"params": "corpus must be a folder's path"})
    return {"top": top, "corpus": corpus}


# The checks of the job kinds (jobs.kinds.JobKind.params): a job's stored params.


def featurevis_job_params(params: Mapping[str, Any]) -> dict[str, Any]:
    return featurevis_params(**_picked(params, FEATUREVIS_FIELDS))


def examples_job_params(params: Mapping[str, Any]) -> dict[str, Any]:
    return examples_params(**_picked(params, ("corpus", "k", "bins")))


def exploration_job_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """An exploration job's params: the id of the jobs.Exploration row it computes."""
    exploration = params.get("exploration")
    if isinstance(exploration, bool) or not isinstance(exploration, int):
        raise ValidationError({"params": "an exploration job needs its exploration's id"})
    return {"exploration": exploration}


def weights_job_params(params: Mapping[str, Any]) -> dict[str, Any]:
    return weights_params(**_picked(params, ("top", "corpus")))


# --- identities -------------------------------------------------------------------------


def featurevis_identity(
    *, kind: str, layer: Layer, channel: int, params: Mapping[str, Any]
) -> dict[str, Any]:
    """Everything that makes a feature visualization; its hash is the artifact's key."""
    return {
        "kind": str(kind),
        "model": layer.model.slug,
        "weights_sha256": layer.model.weights_sha256,
        "layer": layer.name,
        "channel": channel,
        "objective": OBJECTIVE_BY_KIND[ArtifactKind(kind)],
        "steps": params["steps"],
        "size": params["size"],
        "seed": params["seed"],
        "lr": params["lr"],
        **recipe_extras(params),
        "code_version": render.CODE_VERSION,
    }


def examples_identity(
    *, layer: Layer, channel: int, corpus_sha256: str, params: Mapping[str, Any]
) -> dict[str, Any]:
    """Everything that makes a neuron's dataset examples: the corpus by content, not path."""
    return {
        "kind": str(ArtifactKind.EXAMPLES),
        "model": layer.model.slug,
        "weights_sha256": layer.model.weights_sha256,
        "layer": layer.name,
        "channel": channel,
        "corpus_sha256": corpus_sha256,
        "k": params["k"],
        "bins": params["bins"],
        "input_size": layer.model.input_size,
        "crops": "receptive field",  # examples carry their unit's field (render.examples)
        "code_version": render.CODE_VERSION,
    }


def weights_identity(
    *, layer: Layer, below: Layer, direction: str, channel: int, params: Mapping[str, Any]
) -> dict[str, Any]:
    """Everything that makes one neuron's list of connections between ``below`` and
    ``layer``: its strongest inputs (``direction`` "inputs", ``channel`` of ``layer``) or
    its strongest outputs ("outputs", ``channel`` of ``below``)."""
    return {
        "kind": str(ArtifactKind.WEIGHTS),
        "model": layer.model.slug,
        "weights_sha256": layer.model.weights_sha256,
        "layer": layer.name,
        "below": below.name,
        "direction": direction,
        "channel": channel,
        "top": params["top"],
        # Signs and heat maps are what each input adds at the upper unit's peaks on these
        # images (render.weights.contribution_maps).
        "signs": "peak contribution",
        "corpus": params.get("corpus", ""),
        "code_version": render.CODE_VERSION,
    }


def weights_identities(
    *, layer: Layer, below: Layer, params: Mapping[str, Any]
) -> dict[tuple[str, int], dict[str, Any]]:
    """(direction, channel) -> identity, for everything a weights job of ``layer`` makes:
    the inputs of each of its neurons and the outputs of each neuron of ``below``."""
    identities = {}
    for direction, count in ((INPUTS, layer.channels), (OUTPUTS, below.channels)):
        for channel in range(count):
            identities[direction, channel] = weights_identity(
                layer=layer, below=below, direction=direction, channel=channel, params=params
            )
    return identities
