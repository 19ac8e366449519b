"""Checks of what people type, shared by every app (``neurons`` is the lowest of them)."""

from __future__ import annotations

import re
import unicodedata

from django.core.exceptions import ValidationError

# Control characters (C0 but tab and newlines, DEL, C1), lone surrogates (JSON's "\ud800",
# which no database stores) and the non-characters U+FFFE and U+FFFF: nothing a person
# types, and XML (the feeds, an export read by another tool) cannot carry them. Also the bidi
# overrides U+202D and U+202E, which reverse how the text after them reads on every page
# that shows it; the embeddings and marks that right-to-left text carries stay allowed.
CONTROL_RE = re.compile(
    r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202d\u202e\ud800-\udfff\ufffe\uffff]"
)

# No id, page or revision has more digits, and int() would read " 1", "1_0" and "²" (and
# refuse more than 4,300 digits with an error of its own).
DIGITS_RE = re.compile(r"[0-9]{1,18}")


def control_character(value: str) -> str | None:
    """The first control character of ``value``, written as an escape, or None."""
    found = CONTROL_RE.search(value)
    return None if found is None else repr(found.group())[1:-1]


def refuse_control_characters(value: str) -> None:
    """A form field's validator."""
    if (control := control_character(value)) is not None:
        raise ValidationError(f"must not contain control characters (found {control})")


def visible(value: str) -> bool:
    """Whether ``value`` shows anything: a zero-width space alone does not."""
    return any(unicodedata.category(c)[0] not in "ZC" for c in value)


def refuse_invisible(value: str) -> None:
    """A form field's validator: text that shows nothing (a zero-width space) is no text."""
    if value and not visible(value):
        raise ValidationError("shows nothing: it holds only invisible characters")


def whole_number(text: str | None) -> int | None:
    """``text`` as a whole number if it is 1 to 18 ASCII digits, else None."""
    if text is None or DIGITS_RE.fullmatch(text) is None:
        return None
    return int(text)
