"""Lists of neurons: written by their owner, read by anyone with the link."""

from __future__ import annotations

from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Count, Prefetch, QuerySet
from django.http import Http404

from annotations.models import ListEntry, NeuronList
from neurons.models import Neuron
from neurons.validation import control_character, line_break, visible

__all__ = [
    "entry_add",
    "entry_remove",
    "list_create",
    "list_delete",
    "list_edit",
    "list_get",
    "lists_of",
    "lists_recent",
]

TITLE_MAX, DESCRIPTION_MAX, NOTE_MAX = 200, 5000, 2000
User = AbstractBaseUser | AnonymousUser


def _text(field: str, value: str, limit: int, *, required: bool = False, line: bool = False) -> str:
    """``value``, stripped, or a ValidationError naming ``field``; ``line``: one line."""
    value = (value or "").strip()
    if (required or value) and not visible(value):
        raise ValidationError({field: "this field is required"})
    if len(value) > limit:
        raise ValidationError({field: f"at most {limit} characters ({len(value)} given)"})
    if (control := control_character(value)) is not None:
        raise ValidationError({field: f"control characters are not allowed ({control})"})
    if line and (found := line_break(value)) is not None:
        raise ValidationError({field: f"one line only (found {found})"})
    return value


def _owner_only(neuron_list: NeuronList, user: User) -> None:
    if not user.is_authenticated or neuron_list.owner_id != user.pk:
        raise PermissionDenied("only its owner edits a list")


def list_create(*, owner: AbstractBaseUser, title: str, description: str = "") -> NeuronList:
    if not owner.is_authenticated:
        raise PermissionDenied("sign in to keep lists")
    return NeuronList.objects.create(
        owner=owner,
        title=_text("title", title, TITLE_MAX, required=True, line=True),
        description=_text("description", description, DESCRIPTION_MAX),
    )


def list_edit(
    *,
    neuron_list: NeuronList,
    editor: User,
    title: str | None = None,
    description: str | None = None,
) -> NeuronList:
    _owner_only(neuron_list, editor)
    if title is not None:
        neuron_list.title = _text("title", title, TITLE_MAX, required=True, line=True)
    if description is not None:
        neuron_list.description = _text("description", description, DESCRIPTION_MAX)
    neuron_list.save()
    return neuron_list


def list_delete(*, neuron_list: NeuronList, editor: User) -> None:
    _owner_only(neuron_list, editor)
    neuron_list.delete()


@transaction.atomic
def entry_add(
    *, neuron_list: NeuronList, editor: User, neuron: Neuron, note: str | None = None
) -> ListEntry:
    """Add a neuron (or, already there, change its note). No note (``None``) keeps the
    note of a neuron already there."""
    _owner_only(neuron_list, editor)
    if note is None:
        entry, _ = ListEntry.objects.get_or_create(neuron_list=neuron_list, neuron=neuron)
    else:
        entry, _ = ListEntry.objects.update_or_create(
            neuron_list=neuron_list,
            neuron=neuron,
            defaults={"note": _text("note", note, NOTE_MAX)},
        )
    neuron_list.save(update_fields=["updated"])
    return entry


def entry_remove(*, neuron_list: NeuronList, editor: User, neuron: Neuron) -> bool:
    _owner_only(neuron_list, editor)
    removed, _ = ListEntry.objects.filter(neuron_list=neuron_list, neuron=neuron).delete()
    if removed:
        neuron_list.save(update_fields=["updated"])
    return bool(removed)


def _lists() -> QuerySet[NeuronList]:
    entries = ListEntry.objects.select_related("neuron__layer__model")
    return (
        NeuronList.objects.select_related("owner")
        .annotate(size=Count("entries"))
        .prefetch_related(Prefetch("entries", queryset=entries))
    )


def list_get(*, pk: int) -> NeuronList:
    found = _lists().filter(pk=pk).first()
    if found is None:
        raise Http404(f"there is no list {pk}")
    return found


def lists_of(*, owner: User) -> QuerySet[NeuronList]:
    if not owner.is_authenticated:
        return NeuronList.objects.none()
    return _lists().filter(owner=owner)


def lists_recent(*, limit: int | None = 50) -> QuerySet[NeuronList]:
    """The most recently updated lists (all of them, unsliced, with ``limit`` None)."""
    return _lists() if limit is None else _lists()[:limit]


def entries(*, neuron_list: NeuronList) -> list[ListEntry]:
    """Its entries, oldest first (prefetched by the reads above)."""
    return list(neuron_list.entries.all())
