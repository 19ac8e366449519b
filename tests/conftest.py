from __future__ import annotations

import fcntl
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.core.cache import cache
from django.db import connection, connections
from pytest_django.plugin import blocking_manager_key
from rest_framework.test import APIClient

from api.services import api_token_create
from neurons.models import Layer, Model, Neuron
from neurons.services import model_register

REPO = Path(__file__).resolve().parent.parent

# One torch thread a process, workers started by tests included: bin/test runs a test
# process per core, and torch's default of a thread per core in each of them made its tests
# spin against each other, twice as slow (tests/render with two processes: 83 s, 38 s).
# Set before torch is imported; what a test asserts never depends on it.
os.environ.setdefault("OMP_NUM_THREADS", "1")

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


CATALOG = ("inceptionv1", "mobilenet_v2")


def _catalog_register() -> None:
    for slug in CATALOG:
        model_register(slug=slug)


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup: None, django_db_blocker: Any) -> Iterator[None]:
    """The two organisms' catalogs (17,000 rows), registered once for the session: each
    test sees them in its transaction, as if it had registered them itself.

    At the end, every connection still open to the test database is closed first: a thread
    or a killed worker's connection that lingers would make PostgreSQL's DROP DATABASE wait
    5 s and then fail, leaving the database behind."""
    with django_db_blocker.unblock():
        _catalog_register()
    yield
    with django_db_blocker.unblock():
        if connection.vendor == "postgresql":
            # A new connection: a test may have terminated this one (test_faults ends every
            # other connection to the database mid-job), which would fail the query below.
            connections.close_all()
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
        connections.close_all()


@pytest.fixture
def shared_brokers() -> Iterator[None]:
    """The machine's own brokers (Redis database 11, RabbitMQ's "gpu" queue) for one test at a
    time: tests in other processes (bin/test runs one per core) or other runs on this machine
    wait for their turn. Tests that start their own Redis need not."""
    with open(Path(tempfile.gettempdir()) / "microscope-tests-shared-brokers.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released as the file closes
        yield


def _transactional(item: pytest.Item) -> bool:
    marker = item.get_closest_marker("django_db")
    fixtures = set(getattr(item, "fixturenames", ()))
    return bool(marker and marker.kwargs.get("transaction")) or bool(
        {"transactional_db", "live_server"} & fixtures
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """A transactional test empties every table as it ends: the catalogs are registered
    again for the tests after it."""
    result = yield
    if _transactional(item) and nextitem is not None:
        with item.config.stash[blocking_manager_key].unblock():
            _catalog_register()
    return result


@pytest.fixture
def no_catalog(db: None) -> None:
    """Start from an empty catalog (for tests of registering one). Deleted in SQL: nothing
    refers to it yet, and the ORM's cascade would load its 17,000 neurons first (0.7 s)."""
    with connection.cursor() as cursor:
        for table in (Neuron, Layer, Model):
            cursor.execute(f"DELETE FROM {connection.ops.quote_name(table._meta.db_table)}")


@pytest.fixture
def inceptionv1(db: None) -> Model:
    """The InceptionV1 catalog, registered as a user would (no weights here)."""
    return model_register(slug="inceptionv1").model  # registered already: a few queries


@pytest.fixture
def mobilenet(db: None) -> Model:
    """MobileNetV2 with its real ImageNet weights from the registry package."""
    return model_register(slug="mobilenet_v2").model


# Personas, and API clients that act as them.


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
