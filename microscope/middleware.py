"""Site-wide request checks, before any view."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import BadRequest
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import reverse, set_urlconf
from django.utils.html import escape

from api.handlers import database_locked, error_body, is_api, too_large
from neurons.validation import (
    NOT_UTF8,
    control_character,
    repeated_allowed,
    undecodable_field,
    whole_number,
)


def _refusal(
    request: HttpRequest,
    *,
    status: int,
    code: str,
    title: str,
    message: str,
    fields: dict[str, list[str]] | None = None,
) -> HttpResponse:
    """A refusal before any view: the API's error shape under /api/, a bare page elsewhere."""
    if is_api(request):
        body = error_body(status=status, code=code, message=message, fields=fields)
        return JsonResponse(body, status=status)
    page = f"<!doctype html><title>{title}</title><p>{escape(message)}</p>"
    return HttpResponse(page, status=status)


def _bad_text(request: HttpRequest, where: str, message: str) -> HttpResponse:
    return _refusal(
        request,
        status=400,
        code="invalid",
        title="Bad request",
        message=f"{where}: {message}",
        fields={where: [message]},  # named by its key, as a serializer's errors are
    )


def pages_urlconf(get_response: Callable[[HttpRequest], HttpResponse]) -> Callable:
    """A request outside /api/ resolves (and reverses) in ``microscope.page_urls``, the
    URLconf without the API (Django's per-request ``request.urlconf``): a page never loads
    DRF, and a new web process answers its first page about a quarter of a second sooner
    (``bench/web.py``). The API's requests, tests and tools use all of ``ROOT_URLCONF``."""

    def middleware(request: HttpRequest) -> HttpResponse:
        if not is_api(request):
            request.urlconf = "microscope.page_urls"
            # Django sets it for reverse() only once every middleware has let the request
            # through: a refusal before that (a 413, a 400) renders its page with it too.
            set_urlconf(request.urlconf)
        return get_response(request)

    return middleware


class DatabaseBusy:
    """SQLite (the embedded default) lets one writer in at a time: a request that waited its
    whole timeout for another's long write (a big import) is a 503 that says so, with
    ``Retry-After``, not a 500. PostgreSQL locks rows, and never says this."""

    RETRY_AFTER_S = 5

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not database_locked(exception):
            return None
        message = "the database is busy with another request's long write; try again shortly"
        response = _refusal(request, status=503, code="busy", title="Busy", message=message)
        response["Retry-After"] = str(self.RETRY_AFTER_S)
        return response


FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")


def _ours(request: HttpRequest) -> bool:
    """Whether the request is for one of the site's own pages: not the API, not the admin."""
    match = request.resolver_match
    return not is_api(request) and not (match is not None and "admin" in match.namespaces)


class QueryCheck:
    """Checks of the path and the query, for every page and endpoint at once, each a 400
    naming what it refuses, so no view, form or database sees it:

    - a NUL byte in the path or a query parameter (PostgreSQL refuses them);
    - a query parameter that is not UTF-8 (Django reads it as U+FFFD), or with a control
      character or a bidi override (``neurons.validation.control_character``): pages repeat
      what was searched for, in their title too;
    - a parameter given twice (``status=bogus&status=proposed``), or a page's form field,
      unless its view reads a list of it (``neurons.validation.repeatable``): which one was
      meant is not a guess.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if "\x00" in request.path:
            return _bad_text(request, "path", "NUL bytes (%00) are not allowed")
        return self.get_response(request)

    def process_view(
        self, request: HttpRequest, view: Callable[..., HttpResponse], *_: object
    ) -> HttpResponse | None:
        lists = repeated_allowed(view)
        for key, values in request.GET.lists():
            if "\x00" in key or any("\x00" in value for value in values):
                where = key.replace("\x00", "\\x00")
                return _bad_text(request, where, "NUL bytes (%00) are not allowed")
            if len(values) > 1 and key not in lists:
                return _bad_text(request, key[:40], f"given {len(values)} times; give it once")
            for text in (key, *values):
                if (control := control_character(text)) is not None:
                    return _bad_text(
                        request, key[:40], f"control characters are not allowed ({control})"
                    )
        if (where := undecodable_field(request.GET)) is not None:
            return _bad_text(request, where, NOT_UTF8)
        if request.method == "POST" and request.content_type in FORMS and _ours(request):
            # A page's form field or file given twice (kind=circuit&kind=feature), likewise. The
            # API's are refused by its serializers (api.fields.Input), where a list may be,
            # and the admin's forms send lists (selected rows, a user's groups).
            for key, values in [*request.POST.lists(), *request.FILES.lists()]:
                if len(values) > 1 and key not in lists:
                    return _bad_text(request, key[:40], f"given {len(values)} times; give it once")
        return None


def reject_undecodable_forms(
    get_response: Callable[[HttpRequest], HttpResponse],
) -> Callable[[HttpRequest], HttpResponse]:
    """A page's form field (or an uploaded file's name) that is not UTF-8 is a 400 naming
    it. After ``body_limit``, so an oversized body is refused unread. The API's form bodies
    are read by DRF's parsers, which refuse the same (``api.parsers``)."""

    def middleware(request: HttpRequest) -> HttpResponse:
        if request.method == "POST" and request.content_type in FORMS:
            if not is_api(request):
                try:
                    where = undecodable_field(request.POST, request.FILES)
                except (BadRequest, LookupError) as exc:
                    # A form in a charset other than UTF-8 (Django reads no other), or one
                    # that does not exist. Refused here: the 400 handler's CSRF check
                    # would read the body again, raise again, and end in a bare 500.
                    return _bad_text(request, "Content-Type", f"charset: {exc}"[:200])
                if where is not None:
                    return _bad_text(request, where, NOT_UTF8)
        return get_response(request)

    return middleware


def body_limit(
    get_response: Callable[[HttpRequest], HttpResponse],
) -> Callable[[HttpRequest], HttpResponse]:
    """A request body over MICROSCOPE_MAX_BODY (2.5 MB; with a photo, plus its own limit) is
    a 413 that says the limit, before anything reads it. An import's may be up to
    MICROSCOPE_MAX_IMPORT: Django's own limit, DATA_UPLOAD_MAX_MEMORY_SIZE, also a 413."""

    def middleware(request: HttpRequest) -> HttpResponse:
        largest = settings.MICROSCOPE_MAX_BODY
        if request.content_type == "multipart/form-data":  # it may carry a photo as well
            largest += settings.MICROSCOPE_UPLOAD_MAX_BYTES
        is_too_large = (whole_number(request.META.get("CONTENT_LENGTH")) or 0) > largest
        # reverse() only for the API: it loads the API's URLconf, and DRF with it.
        if not is_too_large or (is_api(request) and request.path == reverse("api-import")):
            return get_response(request)
        return too_large(request, largest)

    return middleware
