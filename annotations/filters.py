"""The claim list's filters, one FilterSet (django-filter) for the claims page and the API.

Each parameter is checked as a person writes it (a model slug, a layer name or alias, a
neuron reference, a username) and a bad one names itself: the page answers 400 with the
message, the API its error shape with the field.
"""

from __future__ import annotations

from typing import Any

import django_filters
from django import forms
from django.contrib.auth import get_user_model
from django.db.models import QuerySet

from annotations import selectors
from annotations.models import Claim, Kind, Status
from neurons.models import Layer, Model, Neuron
from neurons.references import BadReference, find_layer, find_model, resolve

ORDERINGS = ["-created", "created", "-updated", "updated"]


def _choices(name: str, values: list[str]) -> dict[str, str]:
    return {"invalid_choice": f"unknown {name} %(value)r (one of {', '.join(values)})"}


class _ClaimFilterForm(forms.Form):
    """Turns the text of model, layer, neuron and author into what they name."""

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        model: Model | None = None
        for field, find in (("model", self._model), ("layer", self._layer)):
            if data.get(field):
                try:
                    data[field] = found = find(data[field], model)
                except BadReference as exc:
                    self._refuse(field, str(exc))
                    return data
                if field == "model":
                    model = found
        if data.get("neuron"):
            try:
                data["neuron"] = resolve(data["neuron"], model=model)
            except BadReference as exc:
                self._refuse("neuron", str(exc))
        if data.get("author"):
            user = get_user_model().objects.filter(username=data["author"]).first()
            if user is None:
                self._refuse("author", f"nobody is called {data['author']!r} here")
            data["author"] = user
        return data

    def _refuse(self, field: str, message: str) -> None:
        # The message quotes what was sent; django-filter's API backend %-formats every
        # message (``message % params``), so the text goes in as a parameter, never as the
        # format: ``author=%s`` is a 400 that says so, not a TypeError.
        self.add_error(field, forms.ValidationError("%(message)s", params={"message": message}))

    @staticmethod
    def _model(slug: str, _: Model | None) -> Model:
        return find_model(slug)

    @staticmethod
    def _layer(name: str, model: Model | None) -> Layer:
        if model is None:
            raise BadReference("give the model too: model=")
        return find_layer(model, name)


class ClaimFilter(django_filters.FilterSet):
    model = django_filters.CharFilter(
        method="_model", max_length=64, help_text="model slug: inceptionv1"
    )
    layer = django_filters.CharFilter(
        method="_layer", max_length=64, help_text="mixed4c or 4c (with model=)"
    )
    neuron = django_filters.CharFilter(
        method="_neuron",
        max_length=200,
        help_text="claims whose current revision involves this neuron, as target or "
        "component: inceptionv1/4c:447 (or 4c:447 with model=)",
    )
    status = django_filters.ChoiceFilter(
        choices=Status.choices, error_messages=_choices("status", Status.values)
    )
    kind = django_filters.ChoiceFilter(
        choices=Kind.choices, error_messages=_choices("kind", Kind.values)
    )
    author = django_filters.CharFilter(method="_author", max_length=150, help_text="a username")
    q = django_filters.CharFilter(method="_search", max_length=200, help_text="words in the text")
    # Read by the API's cursor pagination, which orders the list itself.
    ordering = django_filters.ChoiceFilter(
        method="_ordering",
        choices=[(o, o) for o in ORDERINGS],
        error_messages=_choices("ordering", ORDERINGS),
        help_text="the API's order; the page lists newest first",
    )

    class Meta:
        model = Claim
        fields = ["model", "layer", "neuron", "status", "kind", "author", "q", "ordering"]
        form = _ClaimFilterForm

    def _model(self, claims: QuerySet[Claim], _: str, model: Model) -> QuerySet[Claim]:
        return claims.filter(target__layer__model=model)

    def _layer(self, claims: QuerySet[Claim], _: str, layer: Layer) -> QuerySet[Claim]:
        return claims.filter(target__layer=layer)

    def _neuron(self, claims: QuerySet[Claim], _: str, neuron: Neuron) -> QuerySet[Claim]:
        return selectors.claims_involving(claims, neuron=neuron)

    def _author(self, claims: QuerySet[Claim], _: str, author: Any) -> QuerySet[Claim]:
        return claims.filter(author=author)

    def _search(self, claims: QuerySet[Claim], _: str, text: str) -> QuerySet[Claim]:
        return selectors.claims_search(claims, text)

    def _ordering(self, claims: QuerySet[Claim], _: str, __: str) -> QuerySet[Claim]:
        return claims

    @property
    def problems(self) -> dict[str, list[str]]:
        """Each bad parameter's messages (call after ``is_valid``)."""
        return {field: list(messages) for field, messages in self.errors.items()}
