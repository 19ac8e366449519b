"""``GET /api/v1/me/``: who the API thinks you are; a script's first check of its token."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from api.models import ApiToken


class MeSerializer(serializers.Serializer):
    authenticated = serializers.BooleanField()
    username = serializers.CharField(allow_null=True)
    is_staff = serializers.BooleanField()
    auth = serializers.ChoiceField(
        choices=["token", "session", "anonymous"], help_text="how this request authenticated"
    )
    token = serializers.CharField(allow_null=True, help_text="the token's prefix")


class MeApi(APIView):
    @extend_schema(responses=MeSerializer, operation_id="me_retrieve")
    def get(self, request: Request) -> Response:
        user = request.user
        token = request.auth if isinstance(request.auth, ApiToken) else None
        if token is not None:
            auth = "token"
        elif user.is_authenticated:
            auth = "session"
        else:
            auth = "anonymous"
        data = {
            "authenticated": user.is_authenticated,
            "username": user.get_username() if user.is_authenticated else None,
            "is_staff": user.is_staff,
            "auth": auth,
            "token": token.prefix if token else None,
        }
        return Response(MeSerializer(data).data)
