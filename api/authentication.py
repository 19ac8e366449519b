"""``Authorization: Token <key>`` (or ``Bearer <key>``) with a personal API token."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request

from api.models import ApiToken
from api.selectors import api_token_authenticate
from api.services import api_token_touch

KEYWORDS = {"token", "bearer"}


class TokenAuthentication(BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[AbstractBaseUser, ApiToken] | None:
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower().decode("latin-1") not in KEYWORDS:
            return None  # not ours: session or anonymous
        if len(parts) != 2:
            raise AuthenticationFailed("Send the header as 'Authorization: Token <key>'.")
        try:
            key = parts[1].decode("ascii")
        except UnicodeDecodeError:
            raise AuthenticationFailed("An API token is plain ASCII.") from None
        token = api_token_authenticate(key=key)
        if token is None:
            raise AuthenticationFailed("Unknown or revoked API token.")
        api_token_touch(token=token)
        return token.user, token

    def authenticate_header(self, request: Request) -> str:
        # Makes unauthenticated requests 401 (with WWW-Authenticate) rather than 403.
        return 'Token realm="api"'
