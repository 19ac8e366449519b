"""Who a request comes from, for the API's throttles and the login's lockout alike."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest


def client_ip(request: HttpRequest) -> str:
    """The client's address: the connection's, or behind MICROSCOPE_TRUSTED_PROXIES reverse
    proxies, the one the outermost of them appended to X-Forwarded-For. What a client writes
    in that header itself is never trusted (it would pick a fresh address each time)."""
    remote = request.META.get("REMOTE_ADDR", "") or ""
    proxies = settings.MICROSCOPE_TRUSTED_PROXIES
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if proxies <= 0 or not forwarded:
        return remote
    addresses = [a.strip() for a in forwarded.split(",") if a.strip()]
    return addresses[-min(proxies, len(addresses))] if addresses else remote
