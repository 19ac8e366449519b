"""Site-wide request checks, before any view."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.utils.html import escape

from api.errors import API_PREFIX, error_body


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
