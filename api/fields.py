"""Serializer fields for what the API reads."""

from __future__ import annotations

import re
from typing import Any

from rest_framework import serializers

WHOLE_RE = re.compile(r"-?[0-9]{1,18}")


class Text(serializers.CharField):
    """A CharField that takes only a string. DRF's also takes a number and stores its
    ``str()``: a label of ``1e400`` became the text "inf", and of ``true`` a 400 that
    ``1`` was not."""

    default_error_messages = {"invalid": "Not a valid string."}

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class Whole(serializers.IntegerField):
    """An IntegerField that takes a JSON integer, or a string of ASCII digits (a form's).
    DRF's also takes ``5.0``, ``"5.0"`` and ``"\\u0665"`` (an Arabic-Indic five)."""

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int | str):
            self.fail("invalid")
        if isinstance(data, str) and WHOLE_RE.fullmatch(data) is None:
            self.fail("invalid")
        return super().to_internal_value(data)
