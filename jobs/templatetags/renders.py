"""Renders on the catalog's pages, as tags so that the catalog's views need not know them.

``{% load renders %}{% neuron_visuals neuron %}`` and ``{% neuron_weights neuron %}`` on a
neuron's page, ``{% layer_grid layer %}`` on a layer's page and ``{% model_coverage model %}``
on a model's page.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django import template
from django.urls import reverse
from django.utils.html import format_html

from jobs import selectors
from jobs.atlas import coverage
from neurons.labels import labels_of
from neurons.models import Layer, Model, Neuron

register = template.Library()


@register.inclusion_tag("jobs/_neuron_visuals.html", takes_context=True)
def neuron_visuals(context: template.Context, neuron: Neuron) -> dict[str, Any]:
    request = context.get("request")
    user = getattr(request, "user", None)
    objective = request.GET.get("objective", "") if request is not None else ""
    visuals = selectors.neuron_visuals(neuron=neuron, objective=objective)
    for job in visuals.jobs:
        job.cancellable = job.cancellable_by(user)
    return {
        "request": request,
        "user": user,
        "csrf_token": context.get("csrf_token"),
        "neuron": neuron,
        "layer": neuron.layer,
        "model": neuron.layer.model,
        "visuals": visuals,
    }


@register.inclusion_tag("jobs/_neuron_weights.html")
def neuron_weights(neuron: Neuron) -> dict[str, Any]:
    """``{% neuron_weights neuron %}``: its strongest inputs and outputs."""
    return {"neuron": neuron, "weights": selectors.neuron_weights(neuron=neuron)}


@register.inclusion_tag("jobs/_layer_grid.html")
def layer_grid(layer: Layer, channels: range | None = None) -> dict[str, Any]:
    """``{% layer_grid layer channels %}``: the channels' tiles (all of them by default)."""
    channels = range(layer.channels) if channels is None else channels
    thumbnails = selectors.layer_thumbnails(layer=layer, channels=channels)
    neurons = list(
        Neuron.objects.filter(layer=layer, index__gte=channels.start, index__lt=channels.stop)
    )
    by_id = labels_of(neurons)
    labels = {neuron.index: by_id[neuron.pk] for neuron in neurons if neuron.pk in by_id}
    return {
        "layer": layer,
        "model": layer.model,
        "cells": [
            (index, thumbnails.get(index, selectors.Thumbnail()), labels.get(index))
            for index in channels
        ],
    }


@dataclass(frozen=True)
class MapRow:
    layer: Layer
    y: int
    stride: int  # how much it shrinks the layer below (the input for the first)
    strip: list[tuple[int, int, selectors.Thumbnail]]  # x, channel, picture


MAP_ROW = 64  # px per layer on the map


@register.inclusion_tag("jobs/_model_map.html")
def model_map(model: Model) -> dict[str, Any]:
    """``{% model_map model %}``: the model's significant layers in order, drawn as SVG from
    what registration measured of its module graph (block, resolution, channels, skips,
    branches), each linked to its grid with a strip of its pictures."""
    layers = list(model.layers.order_by("position"))
    strips = selectors.model_strips(model_id=model.pk)
    rows, above = [], model.input_size
    for i, layer in enumerate(layers):
        layer.model = model
        stride = max(1, round(above / layer.height)) if layer.height else 1
        strip = [(384 + j * 56, c, t) for j, (c, t) in enumerate(strips.get(layer.pk, []))]
        rows.append(MapRow(layer, 8 + i * MAP_ROW, stride, strip))
        above = layer.height
    skips = [(row.y - MAP_ROW + 24, row.y + 24) for row in rows if row.layer.skip]
    return {
        "model": model,
        "map_rows": rows,
        "skips": skips,
        "height": 16 + len(rows) * MAP_ROW,
    }


@register.inclusion_tag("jobs/_model_coverage.html")
def model_coverage(model: Model) -> dict[str, Any]:
    return {"model": model, "rows": coverage(model=model)}


@register.inclusion_tag("jobs/_citation.html", takes_context=True)
def neuron_citation(context: template.Context, neuron: Neuron) -> dict[str, Any]:
    """``{% neuron_citation neuron %}``: its canonical link, short reference and picture,
    ready to paste into a paper, a notebook or a page."""
    request = context.get("request")
    absolute = request.build_absolute_uri if request is not None else str
    thumbnail = selectors.neuron_thumbnails(neurons=[neuron]).get(neuron.pk)
    url = absolute(neuron.get_absolute_url())
    image = absolute(thumbnail.url) if thumbnail else ""
    layer = neuron.layer
    picture = format_html('<img src="{}" alt="{}" width="128">', image, neuron.ref)
    return {
        "neuron": neuron,
        "url": url,
        "short": absolute(reverse("neurons:short_link", args=[neuron.ref])),
        "citation": f"{neuron.ref} ({layer.model.title}, {layer.name} channel {neuron.index}), "
        f"Microscope: {url}",
        "markdown": f"[![{neuron.ref}]({image})]({url})" if image else f"[{neuron.ref}]({url})",
        # Shown as text (force_escape in the template), pasted as HTML.
        "html": format_html('<a href="{}">{}</a>', url, picture if image else neuron.ref),
    }
