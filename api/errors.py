"""DRF's exception handler: every API error in the one JSON shape of ``api.handlers``."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import NON_FIELD_ERRORS, RequestDataTooBig
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.serializers import as_serializer_error
from rest_framework.settings import api_settings
from rest_framework.views import exception_handler as drf_exception_handler

from annotations.services import ClaimError
from api.handlers import error_body, too_large_body


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
