"""What OPTIONS answers on every endpoint."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rest_framework.metadata import SimpleMetadata
from rest_framework.request import Request

if TYPE_CHECKING:  # rest_framework.views imports this module as it loads
    from rest_framework.views import APIView


class EndpointMetadata(SimpleMetadata):
    """The endpoint's name, description, media types and allowed methods. Each operation's
    fields are in the OpenAPI schema (``/api/schema/``), which every view declares: DRF's
    own field listing needs one serializer per view, which these views do not have."""

    def determine_metadata(self, request: Request, view: APIView) -> dict[str, Any]:
        metadata = super().determine_metadata(request, view)
        metadata["allowed_methods"] = list(view.allowed_methods)
        metadata["schema"] = request.build_absolute_uri("/api/schema/")
        return metadata

    def determine_actions(self, request: Request, view: APIView) -> dict[str, Any]:
        return {}
