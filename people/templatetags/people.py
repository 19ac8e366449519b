from __future__ import annotations

from django import template
from django.contrib.auth.models import AbstractBaseUser

from people import selectors

register = template.Library()


@register.filter
def display_name(user: AbstractBaseUser | None) -> str:
    return selectors.display_name(user)
