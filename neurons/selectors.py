"""Reads of the catalog. Missing things raise Http404 with a message that says which part."""

from __future__ import annotations

from django.db.models import Count, QuerySet
from django.http import Http404

from neurons.models import Layer, Model, Neuron
from neurons.references import BadReference, check_index, find_layer, find_model


def model_list() -> QuerySet[Model]:
    return Model.objects.annotate(
        layer_count=Count("layers", distinct=True), neuron_count=Count("layers__neurons")
    ).order_by("slug")


def model_get(*, slug: str) -> Model:
    try:
        return find_model(slug)
    except BadReference as exc:
        raise Http404(str(exc)) from None


def layer_list(*, model: Model) -> QuerySet[Layer]:
    return model.layers.all()


def layer_get(*, model: Model, name: str) -> Layer:
    try:
        return find_layer(model, name)
    except BadReference as exc:
        raise Http404(str(exc)) from None


def layer_below(layer: Layer) -> Layer | None:
    """The significant layer directly below ``layer`` (None for the lowest)."""
    return (
        Layer.objects.filter(model_id=layer.model_id, position__lt=layer.position)
        .order_by("-position")
        .first()
    )


def layer_above(layer: Layer) -> Layer | None:
    """The significant layer directly above ``layer`` (None for the highest)."""
    return (
        Layer.objects.filter(model_id=layer.model_id, position__gt=layer.position)
        .order_by("position")
        .first()
    )


def neuron_list(*, layer: Layer) -> QuerySet[Neuron]:
    return layer.neurons.select_related("layer__model")


def neuron_get(*, layer: Layer, index: int) -> Neuron:
    try:
        check_index(layer, index)
        return Neuron.objects.select_related("layer__model").get(layer=layer, index=index)
    except BadReference as exc:
        raise Http404(str(exc)) from None
    except Neuron.DoesNotExist:
        raise Http404(f"{layer}:{index} is not in the catalog") from None


def neuron_lookup(*, model: str, layer: str, index: int) -> Neuron:
    """A neuron by its identity; any part may be wrong and the 404 says which."""
    found_model = model_get(slug=model)
    return neuron_get(layer=layer_get(model=found_model, name=layer), index=index)
