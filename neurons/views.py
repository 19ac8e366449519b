"""Catalog pages: server-rendered, no build step."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render

from neurons import selectors
from neurons.labels import labels_of
from neurons.references import BadReference, resolve
from neurons.validation import page_of
from render.params import OBJECTIVES

TILES_PER_PAGE = 256


def model_list(request: HttpRequest) -> HttpResponse:
    return render(request, "neurons/model_list.html", {"models": selectors.model_list()})


def model_detail(request: HttpRequest, model: str) -> HttpResponse:
    found = selectors.model_get(slug=model)  # its layers' table and coverage: a jobs tag
    return render(request, "neurons/model_detail.html", {"model": found})


def layer_detail(request: HttpRequest, model: str, layer: str) -> HttpResponse:
    found = selectors.layer_get(model=selectors.model_get(slug=model), name=layer)
    if found.name != layer:  # an alias or an OpenAI Microscope name: send to the canonical page
        return redirect(found, permanent=True)
    # A page of tiles at a time: features_18's 1,280 would be one heavy page.
    try:
        page = page_of(Paginator(range(found.channels), TILES_PER_PAGE), request.GET.get("page"))
    except ValueError as exc:
        return render(request, "400.html", {"message": str(exc)}, status=400)
    context = {"model": found.model, "layer": found, "page": page}
    return render(request, "neurons/layer_detail.html", context)


def neuron_detail(request: HttpRequest, model: str, layer: str, index: int) -> HttpResponse:
    neuron = selectors.neuron_lookup(model=model, layer=layer, index=index)
    if neuron.layer.name != layer or request.path != neuron.get_absolute_url():  # "01", aliases
        return redirect(neuron, permanent=True)
    objective = request.GET.get("objective")
    if objective is not None and objective not in OBJECTIVES:  # the tabs' links send one
        message = f"objective: {objective[:40]!r} is not one of {', '.join(OBJECTIVES)}"
        return render(request, "400.html", {"message": message}, status=400)
    found_layer = neuron.layer
    context = {
        "model": found_layer.model,
        "layer": found_layer,
        "neuron": neuron,
        "label": labels_of([neuron]).get(neuron.pk),
        "previous": index - 1 if index > 0 else None,
        "next": index + 1 if index + 1 < found_layer.channels else None,
    }
    return render(request, "neurons/neuron_detail.html", context)


def legacy_neuron(request: HttpRequest, model: str, layer: str, index: str) -> HttpResponse:
    """OpenAI Microscope's links (``/models/inceptionv1/mixed4c_0/447``) keep working."""
    return redirect(
        selectors.neuron_lookup(model=model, layer=layer, index=int(index)), permanent=True
    )


def short_link(request: HttpRequest, ref: str = "") -> HttpResponseRedirect:
    """``/n/inceptionv1/4c:447`` (or ``/n/?q=...``) redirects to the neuron's page."""
    text = ref or request.GET.get("q", "")
    try:
        neuron = resolve(text, model=request.GET.get("model") or None)
    except BadReference as exc:
        raise Http404(str(exc)) from None
    return redirect(neuron)
