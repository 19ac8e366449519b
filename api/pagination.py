from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import QuerySet
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import CursorPagination, PageNumberPagination
from rest_framework.request import Request

from neurons.validation import whole_number

BAD_CURSOR = (
    "not a cursor this list gave out: follow its next and previous links, or start without one"
)


def checked_page_size(request: Request, param: str, largest: int) -> int | None:
    """The page size asked for, None if none; a 400 naming it when it is not 1-``largest``."""
    text = request.query_params.get(param)
    if text is None:
        return None
    size = whole_number(text)
    if size is None or not 1 <= size <= largest:
        raise ValidationError({param: [f"a whole number from 1 to {largest}, not {text!r}"]})
    return size


class PageSize:
    """``?page_size=``, 1 to 500, for both kinds of pages; else the class's page_size."""

    page_size: int
    page_size_query_param = "page_size"
    max_page_size = 500

    def get_page_size(self, request: Request) -> int:
        asked = checked_page_size(request, self.page_size_query_param, self.max_page_size)
        return asked or self.page_size


class Cursor(PageSize, CursorPagination):
    """Stable pages over lists that grow while a script walks them.

    A view may set ``cursor_ordering`` (validated from its ``?ordering=``) before paginating.
    """

    page_size = 50
    ordering = "-created"

    def decode_cursor(self, request: Request) -> Any:
        try:
            return super().decode_cursor(request)
        except NotFound:  # DRF's answer to a cursor it cannot read: a 404
            raise ValidationError({self.cursor_query_param: [BAD_CURSOR]}) from None

    def paginate_queryset(self, queryset: QuerySet, request: Request, view: Any = None) -> Any:
        try:
            return super().paginate_queryset(queryset, request, view)
        # A well-formed cursor at a position no row can have: not a date, or one out of range.
        except (DjangoValidationError, ValueError, TypeError, OverflowError):
            raise ValidationError({self.cursor_query_param: [BAD_CURSOR]}) from None

    def get_ordering(self, request: Request, queryset: QuerySet, view: Any) -> tuple[str, ...]:
        ordering = getattr(view, "cursor_ordering", None) or self.ordering
        return (ordering, "-id" if ordering.startswith("-") else "id")


class Pages(PageSize, PageNumberPagination):
    """Numbered pages (the catalog's neurons: a fixed list), with ``page_size`` as Cursor has
    it; a page that is not a whole number from 1 to the last is a 400 naming ``page``."""

    def paginate_queryset(self, queryset: QuerySet, request: Request, view: Any = None) -> Any:
        asked = request.query_params.get(self.page_query_param)
        try:
            # int() reads "\u0661" as 1; "last" is DRF's name for the last page.
            if asked not in (None, *self.last_page_strings) and whole_number(asked) is None:
                raise NotFound()
            return super().paginate_queryset(queryset, request, view)
        except NotFound:  # DRF's answer to "abc", "0" or a page past the last: a 404
            size = self.get_page_size(request)
            pages = self.django_paginator_class(queryset, size).num_pages
            given = (asked or "")[:40]
            raise ValidationError(
                {self.page_query_param: [f"a page number from 1 to {pages}, not {given!r}"]}
            ) from None
