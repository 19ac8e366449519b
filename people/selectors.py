"""Reads about people."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.shortcuts import get_object_or_404


def user_get(*, username: str) -> AbstractBaseUser:
    return get_object_or_404(get_user_model().objects.select_related("profile"), username=username)


def display_name(user: AbstractBaseUser | None) -> str:
    """The profile's name, else the username (users made by createsuperuser have no profile)."""
    if user is None:
        return ""
    profile = getattr(user, "profile", None)
    return profile.name if profile is not None and profile.name else user.get_username()
