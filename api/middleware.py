from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse


def rate_limit_headers(
    get_response: Callable[[HttpRequest], HttpResponse],
) -> Callable[[HttpRequest], HttpResponse]:
    """Copy what the API throttles counted into ``X-RateLimit-*`` headers."""

    def middleware(request: HttpRequest) -> HttpResponse:
        response = get_response(request)
        counted = getattr(request, "api_rate_limit", None)
        if counted is not None:
            response["X-RateLimit-Limit"] = str(counted[0])
            response["X-RateLimit-Remaining"] = str(counted[1])
        return response

    return middleware
