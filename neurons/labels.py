"""A neuron's current label, wherever pages and the API show neurons.

Labels come from claims, which the catalog knows nothing of: the app that owns claims
registers a labeller (``annotations`` does, in its ``AppConfig.ready``), and grids, weight
lists, neuron pages and the API ask :func:`labels_of`. Without one, nothing is labelled.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from neurons.models import Neuron

__all__ = ["Label", "labels_of", "register"]


@dataclass(frozen=True)
class Label:
    text: str
    status: str  # of the claim it comes from: "supported", "proposed"
    url: str  # the claim's page


Labeller = Callable[[Iterable[Neuron]], dict[int, Label]]
_labellers: list[Labeller] = []


def register(labeller: Labeller) -> None:
    """Declare where labels come from (once; declaring the same again changes nothing)."""
    if labeller not in _labellers:
        _labellers.append(labeller)


def labels_of(neurons: Iterable[Neuron]) -> dict[int, Label]:
    """Neuron id -> its current label, for those that have one."""
    neurons = list(neurons)
    found: dict[int, Label] = {}
    for labeller in _labellers:
        for pk, label in labeller(neurons).items():
            found.setdefault(pk, label)
    return found
