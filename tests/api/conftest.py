from __future__ import annotations

from collections.abc import Callable

import pytest
from django.contrib.auth.models import User
from pytest_django.fixtures import Settings
from rest_framework.test import APIClient

from api.services import api_token_create


@pytest.fixture
def alice(db: None) -> User:
    return User.objects.create_user("alice", password="pw-alice-123")


@pytest.fixture
def bob(db: None) -> User:
    return User.objects.create_user("bob", password="pw-bob-123")


@pytest.fixture
def staff(db: None) -> User:
    return User.objects.create_user("curator", password="pw-curator-123", is_staff=True)


@pytest.fixture
def api() -> APIClient:
    """An anonymous API client, as a script without a token."""
    return APIClient()


@pytest.fixture
def client_for(db: None) -> Callable[[User], APIClient]:
    """An API client that sends a fresh personal token of the user."""

    def make(user: User) -> APIClient:
        _, key = api_token_create(user=user, name="tests")
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
        return client

    return make


@pytest.fixture
def settings_no_throttle(settings: Settings) -> Callable[[], None]:
    """Throttles off, for tests that send many requests."""
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {}}
    return lambda: None
