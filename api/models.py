"""Personal API tokens. Only a hash of each key is stored; the key is shown once."""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.db import models

KEY_PREFIX = "msc_"
SHOWN_LENGTH = len(KEY_PREFIX) + 6  # how much of a key lists show


def key_hash(key: str) -> str:
    """sha256 of a key: keys are 240 random bits, so a fast hash is enough."""
    return hashlib.sha256(key.encode()).hexdigest()


class ApiToken(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100, help_text="what the token is for: a lab, a script")
    # The first characters of the key, to tell tokens apart in lists; not enough to use it.
    prefix = models.CharField(max_length=12)
    key_hash = models.CharField(max_length=64, unique=True)
    created = models.DateTimeField(auto_now_add=True)
    last_used = models.DateTimeField(null=True, blank=True)
    revoked = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created", "-id"]

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.name})"

    @property
    def is_active(self) -> bool:
        return self.revoked is None
