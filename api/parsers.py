"""The API's parsers. Its form and multipart parsers are DRF's, refusing a field that is not
UTF-8 (which Django reads as U+FFFD) with a 400 naming it. Its JSON parser is DRF's, with
more kinds of body refused as a parse error (a 400,
like any other malformed JSON) instead of reaching a view:

- a body nested too deeply for Python's decoder (``[`` 100,000 times), a RecursionError;
- a number too large for a float (``1e400``), which Python reads as ``inf``, as DRF's
  strict mode already refuses the literal ``Infinity``;
- a lone surrogate (``"\\ud800"``), in a key or a value: no database stores one, and no
  response can repeat it (an error message naming the key would be a 500).
"""

from __future__ import annotations

import codecs
import math
import re
from collections.abc import Mapping
from typing import IO, Any

from django.http import QueryDict
from django.utils.datastructures import MultiValueDict
from rest_framework import parsers
from rest_framework.exceptions import ParseError, ValidationError
from rest_framework.utils import json

from neurons.validation import NOT_UTF8, undecodable_field

SURROGATE_RE = re.compile(r"[\ud800-\udfff]")


def _lone_surrogate(data: Any) -> bool:
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if SURROGATE_RE.search(item):
                return True
        elif isinstance(item, dict):
            stack += item.keys()
            stack += item.values()
        elif isinstance(item, list):
            stack += item
    return False


def finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number out of range: {text[:40]}")
    return value


def _no_repeated_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object, refused if it names a key twice (``{"label": "a", "label": "b"}``): which
    one was meant is not a guess, as for a query parameter given twice."""
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise ValueError(f"the key {key[:40]!r} is given twice in one object")
        seen.add(key)
    return dict(pairs)


class JSONParser(parsers.JSONParser):
    def parse(
        self,
        stream: IO[bytes],
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        encoding = parsers.get_encoding(parser_context or {})
        try:
            data = json.load(
                codecs.getreader(encoding)(stream),
                parse_float=finite_float,
                object_pairs_hook=_no_repeated_keys,
            )
        except RecursionError:
            raise ParseError("JSON parse error - nested too deeply") from None
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
        if _lone_surrogate(data):
            raise ParseError("JSON parse error - a lone surrogate (\\ud800-\\udfff) is no text")
        return data


def _refuse_undecodable(data: QueryDict, files: MultiValueDict | None = None) -> None:
    if (where := undecodable_field(data, files)) is not None:
        raise ValidationError({where: [NOT_UTF8]})  # a 400 naming the field


class FormParser(parsers.FormParser):
    """DRF's, refusing a field that is not UTF-8 (which Django reads as U+FFFD)."""

    def parse(
        self,
        stream: IO[bytes],
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> QueryDict:
        data = super().parse(stream, media_type, parser_context)
        _refuse_undecodable(data)
        return data


class MultiPartParser(parsers.MultiPartParser):
    """DRF's, refusing a field or a file name that is not UTF-8."""

    def parse(
        self,
        stream: IO[bytes],
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> parsers.DataAndFiles:
        parsed = super().parse(stream, media_type, parser_context)
        _refuse_undecodable(parsed.data, parsed.files)
        return parsed
