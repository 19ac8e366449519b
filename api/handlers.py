"""One JSON shape for every API error, from DRF views and from Django itself under /api/::

{"error": {"status": 400, "code": "invalid", "message": "...", "fields": {"name": ["..."]}}}

Here: the shape, and Django's error handlers (the URLconf's ``handler404`` and the rest),
which answer in it under /api/ and with the usual pages elsewhere. Plain Django: the site's
middleware and pages use it without loading DRF (whose exception handler is ``api.errors``).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views import defaults

API_PREFIX = "/api/"


def error_body(
    *, status: int, code: str, message: str, fields: dict[str, list[str]] | None = None
) -> dict[str, Any]:
    return {"error": {"status": status, "code": code, "message": message, "fields": fields or {}}}


def database_locked(error: BaseException) -> bool:
    """Whether ``error`` is SQLite's "database is locked": a write that waited its whole
    timeout for another's (the embedded default lets one writer in at a time)."""
    return isinstance(error, OperationalError) and "database is locked" in str(error)


def _json_error(status_code: int, code: str, message: str) -> JsonResponse:
    return JsonResponse(
        error_body(status=status_code, code=code, message=message), status=status_code
    )


def is_api(request: HttpRequest) -> bool:
    """Whether the request is for the API: its path inside the site, after any SCRIPT_NAME
    prefix the site is mounted under (as the URLconf sees it)."""
    return request.path_info.startswith(API_PREFIX)


def too_large_body(largest: int | None = None) -> dict[str, Any]:
    """The 413's body; ``largest``: the limit in bytes (else Django's, the import's)."""
    megabytes = (largest or settings.DATA_UPLOAD_MAX_MEMORY_SIZE) / 2**20
    message = f"the request body is larger than {megabytes:g} MB, the most read here"
    return error_body(status=413, code="too_large", message=message)


def too_large(request: HttpRequest, largest: int | None = None) -> HttpResponse:
    """A 413 saying the limit: JSON under /api/, the bad-request page elsewhere."""
    body = too_large_body(largest)
    if is_api(request):
        return JsonResponse(body, status=413)
    return render(request, "400.html", {"message": body["error"]["message"]}, status=413)


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    if isinstance(exception, RequestDataTooBig):
        return too_large(request)
    if is_api(request):
        return _json_error(400, "bad_request", "The request could not be read.")
    return defaults.bad_request(request, exception)


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    if is_api(request):
        return _json_error(403, "permission_denied", str(exception) or "Permission denied.")
    return defaults.permission_denied(request, exception)


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    if is_api(request):
        said = exception.args[0] if exception.args else None
        message = said if isinstance(said, str) else f"No API endpoint at {request.path}"
        return _json_error(404, "not_found", message)
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    if is_api(request):
        return _json_error(500, "server_error", "Something went wrong on our side; it is logged.")
    return defaults.server_error(request)
