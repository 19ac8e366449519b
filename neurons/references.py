"""Neuron references as researchers write them, parsed in one place.

Accepted forms: ``4c:447``, ``mixed4c:447``, ``inceptionv1/4c:447``,
``inceptionv1/mixed4c:447``. The portable form stored in claims and exports is
``inceptionv1/4c:447`` (see ``Neuron.ref``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from neurons.models import Layer, Model, Neuron

__all__ = ["BadReference", "NeuronRef", "find_layer", "parse", "resolve", "resolve_anywhere"]

# ASCII digits only, and at most nine: no layer has a billion channels, and Python refuses
# to read numbers of more than 4,300 digits. A longer run of digits is no reference at all.
REF_PATTERN = (
    r"(?:(?P<model>[a-z0-9][a-z0-9_-]*)/)?(?P<layer>[A-Za-z0-9_.]+):(?P<index>[0-9]{1,9})(?![0-9])"
)
REF_RE = re.compile(REF_PATTERN)
EXAMPLES = "e.g. 4c:447, mixed4c:447 or inceptionv1/4c:447"


class BadReference(ValueError):
    """A reference that does not name a neuron; the message says what is wrong."""


@dataclass(frozen=True)
class NeuronRef:
    model: str | None
    layer: str
    index: int

    def __str__(self) -> str:
        prefix = f"{self.model}/" if self.model else ""
        return f"{prefix}{self.layer}:{self.index}"


def _shown(text: str) -> str:
    """What was written, quoted for a message: no longer than a line (a command takes any
    length, and would print a 5,000-character name back whole)."""
    return repr(_cut(text))


def _cut(text: str) -> str:
    return text if len(text) <= 80 else f"{text[:80]}..."


def parse(text: str) -> NeuronRef:
    """Read a reference's syntax; nothing is looked up."""
    match = REF_RE.fullmatch(text.strip())
    if match is None:
        raise BadReference(f"{_shown(text.strip())} is not a neuron reference ({EXAMPLES})")
    return NeuronRef(match["model"], match["layer"], int(match["index"]))


def find_model(slug: str) -> Model:
    try:
        return Model.objects.get(slug=slug)
    except Model.DoesNotExist:
        known = ", ".join(Model.objects.values_list("slug", flat=True)) or "none registered"
        raise BadReference(f"unknown model {_shown(slug)} (models: {known})") from None


def find_layer(model: Model, name: str) -> Layer:
    """A layer by canonical name or alias; OpenAI Microscope's ``mixed4c_0`` works too."""
    layers = {}
    for layer in model.layers.all():
        layers[layer.name] = layers[layer.alias] = layer
    candidates = [name, re.sub(r"_[0-9]+$", "", name)]
    for candidate in candidates:
        if candidate in layers:
            return layers[candidate]
    known = ", ".join(layer.name for layer in model.layers.all())
    raise BadReference(f"unknown layer {_shown(name)} in {model.slug} (layers: {known})")


def no_model(ref: NeuronRef) -> str:
    """What to say of a reference without a model: written with one that has its layer."""
    shown = _cut(str(ref))
    for model in Model.objects.prefetch_related("layers").order_by("slug"):
        try:
            find_layer(model, ref.layer)
        except BadReference:
            continue
        return f"{shown} names no model; write it as {model.slug}/{shown}"
    return f"{shown} names no model, and no model here has its layer; write it as model/{shown}"


def check_index(layer: Layer, index: int) -> None:
    if not 0 <= index < layer.channels:
        raise BadReference(
            f"index {index} is out of range for {layer.model.slug}/{layer.name}, "
            f"which has {layer.channels} channels (0-{layer.channels - 1})"
        )


def resolve(text: str | NeuronRef, *, model: Model | str | None = None) -> Neuron:
    """The neuron a reference names. ``model`` is used when the reference names none."""
    ref = parse(text) if isinstance(text, str) else text
    if ref.model is not None:
        found_model = find_model(ref.model)
    elif isinstance(model, Model):
        found_model = model
    elif model:
        found_model = find_model(model)
    else:
        raise BadReference(no_model(ref))
    layer = find_layer(found_model, ref.layer)
    check_index(layer, ref.index)
    neuron = (
        Neuron.objects.select_related("layer__model").filter(layer=layer, index=ref.index).first()
    )
    if neuron is None:  # the layer is registered but its neurons are not (yet)
        raise BadReference(f"{found_model.slug}/{layer.name}:{ref.index} is not in the catalog")
    return neuron


def resolve_anywhere(text: str, *, model: Model | str | None = None) -> list[Neuron]:
    """The neurons a reference may name: with a model (in the text, or ``model``), that
    one; without, one per model where it resolves (``mixed4c:447`` names InceptionV1's,
    ``f10:3`` MobileNetV2's and EfficientNet-Lite0's). Raises BadReference on a text that
    is not a reference, or one that names a neuron nowhere (with the reason)."""
    ref = parse(text)
    if ref.model is not None or model:
        return [resolve(ref, model=model)]
    found, reasons = [], []
    for candidate in Model.objects.order_by("slug"):
        try:
            found.append(resolve(ref, model=candidate))
        except BadReference as exc:
            reasons.append(str(exc))
    if not found:
        raise BadReference(f"{ref} names no neuron of any model ({'; '.join(reasons)})")
    return found
