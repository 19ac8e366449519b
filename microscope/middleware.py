"""Site-wide request checks, before any view."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.urls import reverse
from django.utils.html import escape

from api.errors import API_PREFIX, error_body, too_large
from neurons.validation import whole_number


def reject_nul_bytes(
    get_response: Callable[[HttpRequest], HttpResponse],
) -> Callable[[HttpRequest], HttpResponse]:
    """A NUL byte in the path or a query parameter is a 400 naming it, for every page and
    endpoint at once: no view, form or database ever sees one (PostgreSQL refuses them)."""

    def middleware(request: HttpRequest) -> HttpResponse:
        where = None
        if "\x00" in request.path:
            where = "path"
        else:
            for key, values in request.GET.lists():
                if "\x00" in key or any("\x00" in value for value in values):
                    where = key.replace("\x00", "\\x00")
                    break
        if where is None:
            return get_response(request)
        message = f"{where}: NUL bytes (%00) are not allowed"
        if request.path.startswith(API_PREFIX):
            body = error_body(
                status=400, code="invalid", message=message, fields={where: [message]}
            )
            return JsonResponse(body, status=400)
        return HttpResponseBadRequest(
            f"<!doctype html><title>Bad request</title><p>{escape(message)}</p>"
        )

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
