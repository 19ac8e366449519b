from __future__ import annotations

from collections.abc import Callable

import pytest
from pytest_django.fixtures import Settings


@pytest.fixture
def settings_no_throttle(settings: Settings) -> Callable[[], None]:
    """Throttles off, for tests that send many requests."""
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {}}
    return lambda: None
