"""Writes of API-wide things: personal tokens."""

from __future__ import annotations

import secrets

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import OperationalError, transaction
from django.utils import timezone

from api.handlers import database_locked
from api.models import KEY_PREFIX, SHOWN_LENGTH, ApiToken, key_hash
from neurons.validation import control_character, line_break, visible

NAME_MAX = ApiToken._meta.get_field("name").max_length


@transaction.atomic
def api_token_create(*, user: AbstractBaseUser, name: str) -> tuple[ApiToken, str]:
    """A new token for ``user``; returns it and its key, which is never stored nor shown again."""
    name = name.strip()
    if control_character(name) or line_break(name):
        raise ValidationError({"name": "Control characters (NUL, tabs, ...) are not allowed."})
    if not visible(name):
        raise ValidationError({"name": "Give the token a name, e.g. the lab or script using it."})
    if len(name) > NAME_MAX:
        raise ValidationError({"name": f"Keep the name under {NAME_MAX} characters."})
    key = KEY_PREFIX + secrets.token_urlsafe(30)
    token = ApiToken.objects.create(
        user=user, name=name, prefix=key[:SHOWN_LENGTH], key_hash=key_hash(key)
    )
    return token, key


@transaction.atomic
def api_token_revoke(*, token: ApiToken) -> ApiToken:
    """Refuse the token from now on. Revoking twice changes nothing."""
    if token.revoked is None:
        token.revoked = timezone.now()
        token.save(update_fields=["revoked"])
    return token


def api_token_touch(*, token: ApiToken) -> None:
    """Note when a token was used, at most once a minute (a write per request would cost).
    Only a note: where the database is busy (SQLite, during another's long write), the
    request goes on without it rather than fail."""
    now = timezone.now()
    if token.last_used is None or (now - token.last_used).total_seconds() > 60:
        try:
            with transaction.atomic():
                ApiToken.objects.filter(pk=token.pk).update(last_used=now)
        except OperationalError as error:
            if not database_locked(error):
                raise
            return
        token.last_used = now
