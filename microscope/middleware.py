"""Site-wide request checks, before any view."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.urls import reverse
from django.utils.html import escape

from api.errors import API_PREFIX, error_body, too_large
from neurons.validation import NOT_UTF8, undecodable_field, whole_number


def _bad_text(request: HttpRequest, where: str, message: str) -> HttpResponse:
    message = f"{where}: {message}"
    if request.path.startswith(API_PREFIX):
        body = error_body(status=400, code="invalid", message=message, fields={where: [message]})
        return JsonResponse(body, status=400)
    return HttpResponseBadRequest(
        f"<!doctype html><title>Bad request</title><p>{escape(message)}</p>"
    )


def reject_nul_bytes(
    get_response: Callable[[HttpRequest], HttpResponse],
) -> Callable[[HttpRequest], HttpResponse]:
    """A NUL byte in the path or a query parameter, or a query parameter that is not UTF-8,
    is a 400 naming it, for every page and endpoint at once: no view, form or database ever
    sees one (PostgreSQL refuses NUL bytes; Django reads bad UTF-8 as U+FFFD)."""

    def middleware(request: HttpRequest) -> HttpResponse:
        if "\x00" in request.path:
            return _bad_text(request, "path", "NUL bytes (%00) are not allowed")
        for key, values in request.GET.lists():
            if "\x00" in key or any("\x00" in value for value in values):
                where = key.replace("\x00", "\\x00")
                return _bad_text(request, where, "NUL bytes (%00) are not allowed")
        if (where := undecodable_field(request.GET.lists())) is not None:
            return _bad_text(request, where, NOT_UTF8)
        return get_response(request)

    return middleware


FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")


def reject_undecodable_forms(
    get_response: Callable[[HttpRequest], HttpResponse],
) -> Callable[[HttpRequest], HttpResponse]:
    """A page's form field (or an uploaded file's name) that is not UTF-8 is a 400 naming
    it. After ``body_limit``, so an oversized body is refused unread. The API's form bodies
    are read by DRF's parsers, which refuse the same (``api.parsers``)."""

    def middleware(request: HttpRequest) -> HttpResponse:
        if request.method == "POST" and request.content_type in FORMS:
            if not request.path.startswith(API_PREFIX):
                names = [(name, [upload.name or ""]) for name, upload in request.FILES.items()]
                where = undecodable_field([*request.POST.lists(), *names])
                if where is not None:
                    return _bad_text(request, where, NOT_UTF8)
        return get_response(request)

    return middleware


def body_limit(
    get_response: Callable[[HttpRequest], HttpResponse],
) -> Callable[[HttpRequest], HttpResponse]:
    """A request body over MICROSCOPE_MAX_BODY (2.5 MB; with a photo, plus its own limit) is
    a 413 that says the limit, before anything reads it. An import's may be up to
    MICROSCOPE_MAX_IMPORT: Django's own limit, DATA_UPLOAD_MAX_MEMORY_SIZE, also a 413."""

    def middleware(request: HttpRequest) -> HttpResponse:
        largest = settings.MICROSCOPE_MAX_BODY
        if request.content_type == "multipart/form-data":  # it may carry a photo as well
            largest += settings.MICROSCOPE_UPLOAD_MAX_BYTES
        is_too_large = (whole_number(request.META.get("CONTENT_LENGTH")) or 0) > largest
        if not is_too_large or request.path == reverse("api-import"):
            return get_response(request)
        return too_large(request, largest)

    return middleware
