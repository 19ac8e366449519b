"""Sign-up and profiles. Log in and log out are Django's own views (see urls.py)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme

from annotations import selectors as claim_selectors
from people import selectors, services
from people.forms import ProfileForm, SignUpForm


def _next_url(request: HttpRequest) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    safe = url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    return target if safe else "/"


def sign_up(request: HttpRequest) -> HttpResponse:
    form = SignUpForm(request.POST or None)
    if request.method == "POST":
        if form.is_valid():
            profile = services.user_sign_up(
                username=form.cleaned_data["username"],
                password=form.cleaned_data["password1"],
                name=form.cleaned_data["name"],
                institution=form.cleaned_data["institution"],
            )
            login(request, profile.user, backend="django.contrib.auth.backends.ModelBackend")
            return redirect(_next_url(request))
        status = 400
    else:
        status = 200
    context = {"form": form, "next": _next_url(request)}
    return render(request, "people/sign_up.html", context, status=status)


def person_detail(request: HttpRequest, username: str) -> HttpResponse:
    person = selectors.user_get(username=username)
    context = {
        "person": person,
        "claims": claim_selectors.claim_list(viewer=request.user, author=person)[:50],
        "reviews": claim_selectors.review_list(viewer=request.user, reviewer=person)[:50],
    }
    return render(request, "people/person_detail.html", context)


@login_required
def profile_edit(request: HttpRequest) -> HttpResponse:
    profile = getattr(request.user, "profile", None)
    initial = {"name": selectors.display_name(request.user)}
    if profile is not None:
        initial["institution"] = profile.institution
    form = ProfileForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        services.profile_update(user=request.user, **form.cleaned_data)
        return redirect("person", request.user.get_username())
    status = 400 if request.method == "POST" else 200
    return render(request, "people/profile_form.html", {"form": form}, status=status)


class _RefusedIs400:
    """Django's account views answer a refused form with 200; here, as every form of the
    site does, with 400 (the form and its errors, as before)."""

    def form_invalid(self, form: Any) -> HttpResponse:
        response = super().form_invalid(form)  # type: ignore[misc]
        response.status_code = 400
        return response


class LoginView(_RefusedIs400, auth_views.LoginView):
    pass


class PasswordChangeView(_RefusedIs400, auth_views.PasswordChangeView):
    pass


class PasswordResetView(_RefusedIs400, auth_views.PasswordResetView):
    pass


class PasswordResetConfirmView(_RefusedIs400, auth_views.PasswordResetConfirmView):
    pass
