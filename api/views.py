"""The page where people create and revoke their personal API tokens."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from api.models import ApiToken
from api.selectors import api_token_list
from api.services import api_token_create, api_token_revoke


@login_required
@require_http_methods(["GET", "POST"])
def token_list(request: HttpRequest) -> HttpResponse:
    context: dict[str, object] = {"name": ""}
    status = 200
    if request.method == "POST":
        try:
            token, key = api_token_create(user=request.user, name=request.POST.get("name", ""))
        except ValidationError as exc:
            context["errors"] = exc.message_dict
            context["name"] = request.POST.get("name", "")
            status = 400
        else:
            # Rendered, not redirected: the key is on this one response and nowhere else.
            context["new_token"], context["new_key"] = token, key
            status = 201
    context["tokens"] = api_token_list(user=request.user)
    return render(request, "api/tokens.html", context, status=status)


@login_required
@require_POST
def token_revoke(request: HttpRequest, token_id: int) -> HttpResponse:
    try:
        token = api_token_list(user=request.user).get(pk=token_id)
    except ApiToken.DoesNotExist:
        raise Http404("you have no such token") from None
    api_token_revoke(token=token)
    messages.success(request, f"Token {token.prefix}… ({token.name}) is revoked.")
    return redirect("api:token_list")
