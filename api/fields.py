"""Serializer fields for what the API reads."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers


class Text(serializers.CharField):
    """A CharField that takes only a string. DRF's also takes a number and stores its
    ``str()``: a label of ``1e400`` became the text "inf", and of ``true`` a 400 that
    ``1`` was not."""

    default_error_messages = {"invalid": "Not a valid string."}

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)
