"""The claims block of a neuron's page: ``{% load claims %}{% neuron_claims neuron %}``.

A tag, so that the catalog's views need not know about claims.
"""

from __future__ import annotations

from typing import Any

from django import template

from annotations import selectors
from annotations.forms import ClaimCreateForm
from neurons.models import Neuron

register = template.Library()

LIMIT = 100


@register.inclusion_tag("annotations/neuron_claims.html", takes_context=True)
def neuron_claims(context: template.Context, neuron: Neuron) -> dict[str, Any]:
    request = context["request"]
    claims = list(selectors.claim_list(viewer=request.user, neuron=neuron)[:LIMIT])
    form = ClaimCreateForm(initial={"target": neuron.ref, "expression": f"{neuron.short_ref} = "})
    return {
        "request": request,
        "user": request.user,
        "csrf_token": context.get("csrf_token"),
        "neuron": neuron,
        "about": [claim for claim in claims if claim.target_id == neuron.pk],
        "uses": [claim for claim in claims if claim.target_id != neuron.pk],
        "form": form,
    }


@register.inclusion_tag("annotations/_neuron_lists.html", takes_context=True)
def neuron_lists(context: template.Context, neuron: Neuron) -> dict[str, Any]:
    """``{% neuron_lists neuron %}``: the lists it is in, and a form to add it to one."""
    from annotations.models import NeuronList

    request = context.get("request")
    user = getattr(request, "user", None)
    signed_in = user is not None and user.is_authenticated
    return {
        "neuron": neuron,
        "user": user,
        "request": request,
        "csrf_token": context.get("csrf_token"),
        "mine": list(NeuronList.objects.filter(owner=user).only("id", "title"))
        if signed_in
        else [],
        "containing": list(
            NeuronList.objects.filter(entries__neuron=neuron).select_related("owner")[:20]
        ),
    }
