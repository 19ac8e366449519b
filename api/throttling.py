"""Throttles per user and per anonymous client that also say how much is left.

Rates come from ``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]``, read on every request so that
tests (and settings overrides) take effect; DRF's own classes read them once at import.
A 429 carries ``Retry-After`` (DRF); every throttled response carries ``X-RateLimit-Limit``
and ``X-RateLimit-Remaining`` (added by ``api.middleware.rate_limit_headers``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rest_framework.settings import api_settings
from rest_framework.throttling import AnonRateThrottle, UserRateThrottle

from api.clients import client_ip

if TYPE_CHECKING:  # rest_framework.views imports this module through its settings
    from rest_framework.request import Request
    from rest_framework.views import APIView


class _RateHeaders:
    scope: str
    rate: str | None
    num_requests: int
    history: list[float]

    def get_rate(self) -> str | None:
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def get_ident(self, request: Request) -> str:
        return client_ip(request)

    def allow_request(self, request: Request, view: APIView) -> bool:
        allowed = super().allow_request(request, view)  # type: ignore[misc]
        if self.rate is not None and getattr(self, "key", None) is not None:
            remaining = max(0, self.num_requests - len(self.history))
            request._request.api_rate_limit = (self.num_requests, remaining)
        return allowed


class AnonThrottle(_RateHeaders, AnonRateThrottle):
    """Per client address, for requests without a user."""


class UserThrottle(_RateHeaders, UserRateThrottle):
    """Per user, however they authenticate (token or session)."""

    def get_cache_key(self, request: Request, view: APIView) -> str | None:
        if not request.user or not request.user.is_authenticated:
            return None  # AnonThrottle counts these; DRF's class would count them twice
        return super().get_cache_key(request, view)
