"""People: un-namespaced, because Django's auth settings name "login" (LOGIN_URL)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import views as auth_views
from django.urls import path, reverse_lazy

from people import views


def _form(title: str, button: str) -> dict[str, Any]:
    context = {"title": title, "button": button}
    return {"template_name": "registration/account_form.html", "extra_context": context}


def _said(message: str) -> dict[str, Any]:
    context = {"title": message}
    return {"template_name": "registration/account_message.html", "extra_context": context}


urlpatterns = [
    path("accounts/signup/", views.sign_up, name="signup"),
    path("accounts/login/", views.LoginView.as_view(), name="login"),
    # Django's LogoutView takes POST only: a link cannot log anyone out (CSRF).
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/profile/", views.profile_edit, name="profile_edit"),
    # Passwords: Django's own views, on the site's templates.
    path(
        "accounts/password/",
        views.PasswordChangeView.as_view(**_form("Change your password", "Change it")),
        name="password_change",
    ),
    path(
        "accounts/password/changed/",
        auth_views.PasswordChangeDoneView.as_view(**_said("Your password is changed.")),
        name="password_change_done",
    ),
    path(
        "accounts/password/reset/",
        views.PasswordResetView.as_view(
            **_form("Reset your password", "Send me a link"),
            success_url=reverse_lazy("password_reset_done"),
        ),
        name="password_reset",
    ),
    path(
        "accounts/password/reset/sent/",
        auth_views.PasswordResetDoneView.as_view(
            **_said("If an account has that address, a link to reset its password is on its way.")
        ),
        name="password_reset_done",
    ),
    path(
        "accounts/password/reset/<uidb64>/<token>/",
        views.PasswordResetConfirmView.as_view(
            **_form("Choose a new password", "Set it"),
            success_url=reverse_lazy("password_reset_complete"),
        ),
        name="password_reset_confirm",
    ),
    path(
        "accounts/password/reset/done/",
        auth_views.PasswordResetCompleteView.as_view(
            **_said("Your password is set: log in with it.")
        ),
        name="password_reset_complete",
    ),
    # path, not str: a username from an older import may hold "/" (or "?", "#", a space,
    # which reverse() quotes), and every page that names its person must still render.
    path("people/<path:username>/", views.person_detail, name="person"),
]
