"""Serializer fields for what the API reads."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from django.http import QueryDict
from rest_framework import serializers
from rest_framework.fields import ListField, MultipleChoiceField
from rest_framework.relations import ManyRelatedField

from neurons.validation import one_line

WHOLE_RE = re.compile(r"-?[0-9]{1,18}")


class Text(serializers.CharField):
    """A CharField that takes only a string. DRF's also takes a number and stores its
    ``str()``: a label of ``7`` became the text "7", and of ``1e400`` the text "inf"."""

    default_error_messages = {"invalid": "Not a valid string."}

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class OneLine(Text):
    """Text shown on one line (a label, a title, a name), read from an export: line breaks
    and tabs become spaces, as text stored before they were refused must still travel."""

    def to_internal_value(self, data: Any) -> str:
        return one_line(super().to_internal_value(data))


class Whole(serializers.IntegerField):
    """An IntegerField that takes a JSON number that is whole (``64``, or ``64.0`` as numpy
    writes it), or a string of ASCII digits (a form's). DRF's also takes ``"5.0"``, ``5.5``
    (as 5) and ``"\\u0665"`` (an Arabic-Indic five)."""

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, float) and data.is_integer():
            data = int(data)
        if isinstance(data, bool) or not isinstance(data, int | str):
            self.fail("invalid")
        if isinstance(data, str) and WHOLE_RE.fullmatch(data) is None:
            self.fail("invalid")
        return super().to_internal_value(data)


LISTS = (ListField, MultipleChoiceField, ManyRelatedField)  # fields that read a key's every value


class Input(serializers.Serializer):
    """A request's body: a field it does not have is a 400 naming it. DRF drops one
    silently, so a misspelt field, or one that never changes (a claim's ``kind``), seemed
    accepted."""

    NOT_FIELDS = frozenset({"csrfmiddlewaretoken"})  # an HTML form's, with the session

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, Mapping):
            writable = {name for name, f in self.fields.items() if not f.read_only}
            # A read-only field (a list's owner, uid or entries) is refused too: it is no
            # more set by a PATCH than a field that does not exist.
            unknown = sorted(set(data) - writable - self.NOT_FIELDS, key=str)
            if unknown:
                known = ", ".join(name for name, f in self.fields.items() if not f.read_only)
                raise serializers.ValidationError(
                    {str(name)[:40]: [f"not a field here; the fields are {known}"]
                     for name in unknown[:10]}
                )  # fmt: skip
        if isinstance(data, QueryDict):
            # A form field given twice (label=a&label=b): which one was meant is not a
            # guess, as for a repeated JSON key or query parameter; a list takes them all.
            repeated = {
                name: [f"given {len(values)} times; give it once"]
                for name, values in data.lists()
                if len(values) > 1 and not isinstance(self.fields.get(name), LISTS)
            }
            if repeated:
                raise serializers.ValidationError(repeated)
        return super().to_internal_value(data)


class Uid(serializers.UUIDField):
    """A UUIDField that takes only a string: DRF's reads the number 0 (or ``true``) as the
    UUID of that integer."""

    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, str):
            self.fail("invalid", value=data)
        return super().to_internal_value(data)


class Slug(serializers.SlugField):
    """A SlugField that takes only a string (DRF's reads the number 12 as "12")."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class Flag(serializers.BooleanField):
    """A JSON ``true`` or ``false``, as an export writes them. DRF's BooleanField also
    reads ``"yes"``, ``"on"`` and ``1``; use it where a form sends the value."""

    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            self.fail("invalid", input=data)
        return data
