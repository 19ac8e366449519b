"""The registry of job kinds: what each kind of render job takes, makes and runs.

A kind is declared once, by the app that owns it, in its ``AppConfig.ready`` (``jobs``
declares feature visualizations, dataset examples and connecting weights in
``jobs.apps``; ``annotations`` declares circuit evidence). ``jobs`` runs any kind and knows
nothing of what a kind is about: its function is a dotted path, imported on first use
(as healthchecks' ``TRANSPORTS``), so that the site never imports what workers run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any, Protocol

from django.core.exceptions import ValidationError
from django.utils.module_loading import import_string

if TYPE_CHECKING:
    from jobs.models import RenderJob

__all__ = [
    "JobKind",
    "Progress",
    "RenderFailure",
    "Target",
    "choices",
    "executor",
    "get",
    "label",
    "names",
    "register",
]


class Progress(Protocol):
    """How a job reports how far it is: ``done`` of ``total`` units (channels, images),
    and where it is within the current one ("channels 0-7: step 120 of 512")."""

    def __call__(self, done: int, total: int, note: str = "") -> None: ...


class RenderFailure(Exception):
    """A job cannot be done; the message says why and what to do."""


class Target(Enum):
    """What one job of a kind works on."""

    LAYER = "a range of channels of one layer"
    LAYER_OR_MODEL = "a range of channels of one layer, or of every layer (layer None)"
    WHOLE_LAYER = "every channel of one layer"
    NEURON = "one channel of one layer"


@dataclass(frozen=True)
class JobKind:
    name: str  # stored in RenderJob.kind
    label: str  # for people: "feature visualization"
    target: Target
    # Checks and completes the params given for a job; raises ValidationError
    # ({field: message}). What it returns is stored on the job.
    params: Callable[[Mapping[str, Any]], dict[str, Any]]
    # "package.module.function" called as function(job=job, progress=progress) in a
    # worker (imported by django.utils.module_loading.import_string on first use); it
    # raises RenderFailure with a reason a person can act on.
    run: str
    # Whether pages, the API and the render command may ask for it (evidence is made for
    # each circuit claim instead).
    requestable: bool = True


_KINDS: dict[str, JobKind] = {}


def register(kind: JobKind) -> None:
    """Declare a kind; declaring the same name twice is a mistake, unless it is the same."""
    known = _KINDS.get(kind.name)
    if known is not None and known != kind:
        raise ValueError(f"job kind {kind.name!r} is declared twice")
    _KINDS[kind.name] = kind


def get(name: str) -> JobKind:
    """The kind of that name; raises ValidationError on the field ``kind`` if unknown."""
    try:
        return _KINDS[name]
    except (KeyError, TypeError):
        raise ValidationError(
            {"kind": f"unknown kind {name!r}; choose one of {', '.join(names())}"}
        ) from None


def names(*, requestable: bool = False) -> list[str]:
    return [k.name for k in _KINDS.values() if k.requestable or not requestable]


def label(name: str) -> str:
    kind = _KINDS.get(name)
    return kind.label if kind is not None else name


def choices(*, requestable: bool = False) -> list[tuple[str, str]]:
    return [(k.name, k.label) for k in _KINDS.values() if k.requestable or not requestable]


def executor(job: RenderJob) -> Callable[..., None]:
    """The function that does a job of this kind (imported on first use)."""
    kind = _KINDS.get(job.kind)
    if kind is None:
        raise RenderFailure(f"no worker code for job kind {job.kind!r} on this worker")
    return import_string(kind.run)
