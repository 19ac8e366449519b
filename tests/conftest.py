from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings
from django.core.cache import cache

from neurons.models import Model
from neurons.services import model_register

REPO = Path(__file__).resolve().parent.parent

# Tests sign in many personas: a fast hash (PBKDF2 takes 0.2 s a password) changes nothing
# that they assert.
settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _isolated_files(tmp_path: Path) -> None:
    """Media and weights of each test live in its own folder."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.WEIGHTS_DIR = tmp_path / "weights"


@pytest.fixture(autouse=True)
def _fresh_api_throttles() -> None:
    """API throttles count in the cache; each test starts with none used."""
    cache.clear()


@pytest.fixture
def inceptionv1(db: None) -> Model:
    """The InceptionV1 catalog, registered as a user would (no weights here)."""
    return model_register(slug="inceptionv1").model


@pytest.fixture
def mobilenet(db: None) -> Model:
    """MobileNetV2 with its real ImageNet weights from the registry package."""
    return model_register(slug="mobilenet_v2").model
