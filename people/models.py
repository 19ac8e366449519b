"""Researchers: Django's users, plus how they appear to others (name and institution)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.urls import reverse

from neurons.validation import refuse_control_characters, refuse_invisible, refuse_line_breaks

# A name shows on every claim, on one line.
TEXT = [refuse_control_characters, refuse_invisible, refuse_line_breaks]


class Profile(models.Model):
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="profile"
    )
    # The validators are the forms' (sign-up, profile, the admin's), not the ORM's.
    name = models.CharField(max_length=120, validators=TEXT)
    institution = models.CharField(max_length=200, blank=True, validators=TEXT)
    # A person imported from another instance: its address (the export's source) and their
    # username there. Blank: a person of this instance. Two labs' "alice" never merge.
    origin = models.CharField(max_length=300, blank=True)
    origin_username = models.CharField(max_length=150, blank=True)

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("person", args=[self.user.get_username()])
