"""One JSON shape for every API error, from DRF views and from Django itself under /api/::

{"error": {"status": 400, "code": "invalid", "message": "...", "fields": {"name": ["..."]}}}
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import NON_FIELD_ERRORS, RequestDataTooBig
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views import defaults
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.serializers import as_serializer_error
from rest_framework.settings import api_settings
from rest_framework.views import exception_handler as drf_exception_handler

from annotations.services import ClaimError

API_PREFIX = "/api/"


class PreconditionFailed(exceptions.APIException):
    status_code = status.HTTP_412_PRECONDITION_FAILED
    default_code = "precondition_failed"
    default_detail = "The resource changed since the version you sent in If-Match."


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"
    default_detail = "The resource changed meanwhile; read it again."


class PreconditionRequired(exceptions.APIException):
    status_code = status.HTTP_428_PRECONDITION_REQUIRED
    default_code = "precondition_required"
    default_detail = "Send the ETag of the version you edited in an If-Match header."


def error_body(
    *, status: int, code: str, message: str, fields: dict[str, list[str]] | None = None
) -> dict[str, Any]:
    return {"error": {"status": status, "code": code, "message": message, "fields": fields or {}}}


def _flatten(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    """Nested serializer errors as ``{"terms.0.ref": ["..."]}``."""
    if isinstance(detail, dict):
        flat: dict[str, list[str]] = {}
        for key, value in detail.items():
            flat.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    if isinstance(detail, list) and any(isinstance(item, dict | list) for item in detail):
        flat = {}
        for index, item in enumerate(detail):
            if item:
                flat.update(_flatten(item, f"{prefix}.{index}" if prefix else str(index)))
        return flat
    items = detail if isinstance(detail, list) else [detail]
    return {prefix: [str(item) for item in items]}


def _validation_body(detail: Any, status_code: int) -> dict[str, Any]:
    if not isinstance(detail, dict):
        messages = [str(m) for m in (detail if isinstance(detail, list) else [detail])]
        return error_body(status=status_code, code="invalid", message="; ".join(messages))
    fields = _flatten(detail)
    general = fields.pop(api_settings.NON_FIELD_ERRORS_KEY, []) + fields.pop(NON_FIELD_ERRORS, [])
    if general:
        message = " ".join(general)
    elif fields:
        name, messages = next(iter(fields.items()))
        message = f"{name}: {messages[0]}"
    else:
        message = "Invalid input."
    return error_body(status=status_code, code="invalid", message=message, fields=fields)


# What the claim services' refusals are over HTTP (annotations.services.ClaimError.code).
CLAIM_ERRORS: dict[str, type[exceptions.APIException]] = {
    ClaimError.FORBIDDEN: exceptions.PermissionDenied,
    ClaimError.STALE: Conflict,
}


def from_claim_error(error: ClaimError) -> exceptions.APIException:
    exception = CLAIM_ERRORS.get(error.code)
    if exception is not None:
        return exception(error.message)
    field = api_settings.NON_FIELD_ERRORS_KEY if error.field == NON_FIELD_ERRORS else error.field
    return exceptions.ValidationError({field: [error.message]})


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler (it keeps headers such as Retry-After), then our shape."""
    if isinstance(exc, ClaimError):
        exc = from_claim_error(exc)
    if isinstance(exc, DjangoValidationError):  # raised by services
        exc = exceptions.ValidationError(detail=as_serializer_error(exc))
    elif isinstance(exc, Http404):  # raised by selectors, with a message that says which part
        exc = exceptions.NotFound(*exc.args)
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(*exc.args)
    if isinstance(exc, RequestDataTooBig):
        return Response(too_large_body(), status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # a bug: Django's 500 handler answers, in the same shape under /api/
    if isinstance(exc, exceptions.ValidationError):
        response.data = _validation_body(exc.detail, response.status_code)
        return response
    detail = getattr(exc, "detail", None)
    if isinstance(exc, exceptions.APIException) and isinstance(exc.detail, str):
        code = exc.detail.code or exc.default_code
    else:
        code = getattr(exc, "default_code", "error")
    message = str(detail) if detail is not None else str(exc)
    response.data = error_body(status=response.status_code, code=str(code), message=message)
    return response


def _json_error(status_code: int, code: str, message: str) -> JsonResponse:
    return JsonResponse(
        error_body(status=status_code, code=code, message=message), status=status_code
    )


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith(API_PREFIX)


def too_large_body(largest: int | None = None) -> dict[str, Any]:
    """The 413's body; ``largest``: the limit in bytes (else Django's, the import's)."""
    megabytes = (largest or settings.DATA_UPLOAD_MAX_MEMORY_SIZE) / 2**20
    message = f"the request body is larger than {megabytes:g} MB, the most read here"
    return error_body(status=413, code="too_large", message=message)


def too_large(request: HttpRequest, largest: int | None = None) -> HttpResponse:
    """A 413 saying the limit: JSON under /api/, the bad-request page elsewhere."""
    body = too_large_body(largest)
    if _is_api(request):
        return JsonResponse(body, status=413)
    return render(request, "400.html", {"message": body["error"]["message"]}, status=413)


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    if isinstance(exception, RequestDataTooBig):
        return too_large(request)
    if _is_api(request):
        return _json_error(400, "bad_request", "The request could not be read.")
    return defaults.bad_request(request, exception)


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _is_api(request):
        return _json_error(403, "permission_denied", str(exception) or "Permission denied.")
    return defaults.permission_denied(request, exception)


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _is_api(request):
        said = exception.args[0] if exception.args else None
        message = said if isinstance(said, str) else f"No API endpoint at {request.path}"
        return _json_error(404, "not_found", message)
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    if _is_api(request):
        return _json_error(500, "server_error", "Something went wrong on our side; it is logged.")
    return defaults.server_error(request)
