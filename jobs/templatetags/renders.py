"""Renders on the catalog's pages, as tags so that the catalog's views need not know them.

``{% load renders %}{% neuron_visuals neuron %}`` and ``{% neuron_weights neuron %}`` on a
neuron's page, ``{% layer_grid layer %}`` on a layer's page and ``{% model_coverage model %}``
on a model's page.
"""

from __future__ import annotations

from typing import Any

from django import template

from jobs import selectors
from jobs.atlas import coverage
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
    return {
        "layer": layer,
        "model": layer.model,
        "cells": [(index, thumbnails.get(index, selectors.Thumbnail())) for index in channels],
    }


@register.inclusion_tag("jobs/_model_coverage.html")
def model_coverage(model: Model) -> dict[str, Any]:
    return {"model": model, "rows": coverage(model=model)}
