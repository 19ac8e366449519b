"""The OpenAPI schema says what the server does: token auth, and the error shape of every 4xx."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension

if TYPE_CHECKING:
    from drf_spectacular.openapi import AutoSchema

ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["status", "code", "message", "fields"],
            "properties": {
                "status": {"type": "integer", "example": 400},
                "code": {"type": "string", "example": "invalid"},
                "message": {"type": "string", "example": "expression: unknown layer '9z'"},
                "fields": {
                    "type": "object",
                    "additionalProperties": {"type": "array", "items": {"type": "string"}},
                    "example": {"expression": ["unknown layer '9z' in inceptionv1"]},
                },
            },
        }
    },
}
ERROR_RESPONSE = {
    "description": "An error: the status, a code, a message a person can act on and, for "
    "invalid input, the fields at fault.",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
}


class TokenScheme(OpenApiAuthenticationExtension):
    target_class = "api.authentication.TokenAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema: AutoSchema) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A personal API token from /account/tokens/ or "
            "`manage.py api_token create <username>`: `Authorization: Token <key>` "
            "(or `Bearer <key>`).",
        }


def add_error_responses(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """Postprocessing hook: every operation may answer a 4xx in the one error shape."""
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    for path in result.get("paths", {}).values():
        for method, operation in path.items():
            if method in {"get", "post", "put", "patch", "delete"}:
                operation.setdefault("responses", {}).setdefault("4XX", ERROR_RESPONSE)
    return result
