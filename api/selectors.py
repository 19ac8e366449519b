"""Reads of API-wide things."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet
from django.http import Http404

from api.models import SHOWN_LENGTH, ApiToken, key_hash


def api_token_list(*, user: AbstractBaseUser) -> QuerySet[ApiToken]:
    return ApiToken.objects.filter(user=user)


def api_token_get(*, user: AbstractBaseUser, prefix: str) -> ApiToken:
    """One of the user's tokens by the start of its key (as lists show it)."""
    prefix = prefix.strip()[:SHOWN_LENGTH]  # the whole key works too
    tokens = list(api_token_list(user=user).filter(prefix__startswith=prefix)[:2])
    if not tokens or not prefix:
        raise Http404(f"{user} has no token starting with {prefix!r}")
    if len(tokens) > 1:
        raise Http404(f"more than one token of {user} starts with {prefix!r}; give more of it")
    return tokens[0]


def api_token_authenticate(*, key: str) -> ApiToken | None:
    """The active token with this key, with its user; None for an unknown or revoked key."""
    return (
        ApiToken.objects.select_related("user")
        .filter(key_hash=key_hash(key), revoked__isnull=True, user__is_active=True)
        .first()
    )
