"""Writes about people: sign-up and profile edits."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from people.models import Profile


@transaction.atomic
def user_sign_up(*, username: str, password: str, name: str, institution: str = "") -> Profile:
    """A new researcher with a profile. The caller has validated the username and password."""
    user = get_user_model().objects.create_user(username=username, password=password)
    return Profile.objects.create(user=user, name=name.strip(), institution=institution.strip())


@transaction.atomic
def user_create(
    *,
    username: str,
    password: str | None,
    name: str,
    institution: str = "",
    email: str = "",
    staff: bool = False,
) -> Profile:
    """An account made by a command: ``password`` None leaves it without one (unusable)."""
    user = get_user_model().objects.create_user(
        username=username, password=password, email=email, is_staff=staff
    )
    return Profile.objects.create(user=user, name=name.strip(), institution=institution.strip())


@transaction.atomic
def profile_update(*, user: AbstractBaseUser, name: str, institution: str) -> Profile:
    """Name and institution; a user made without a profile (createsuperuser) gets one."""
    profile, _ = Profile.objects.update_or_create(
        user=user, defaults={"name": name.strip(), "institution": institution.strip()}
    )
    return profile
