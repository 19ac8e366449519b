"""Real concurrent requests on PostgreSQL: races answer 412 or 409, never 500, and lose
nothing."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from django.contrib.auth.models import User
from django.db import connection, connections
from rest_framework.test import APIClient

from annotations.models import Claim, Review
from neurons.models import Model
from tests.api.test_claims import FEATURE, ClientFor, post_claim

pytestmark = pytest.mark.django_db(transaction=True)


def at_once(calls: list[Callable[[], int]]) -> list[int]:
    """Run the calls in threads released together (each its own database connection)."""
    start = threading.Barrier(len(calls))
    codes: list[int] = [0] * len(calls)

    def run(i: int) -> None:
        try:
            start.wait()
            codes[i] = calls[i]()
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return codes


@pytest.fixture
def postgresql() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("row locks and concurrent transactions need PostgreSQL")


def test_eight_edits_with_the_same_etag_at_once_make_one_revision(
    postgresql: None, client_for: ClientFor, alice: User, inceptionv1: Model,
    settings_no_throttle: Callable[[], None],
) -> None:  # fmt: skip
    claim = post_claim(client_for(alice), FEATURE)
    url, etag = f"/api/v1/claims/{claim['id']}/", claim["etag"]
    clients = [client_for(alice) for _ in range(8)]

    def edit(client: APIClient, n: int, round_: int) -> Callable[[], int]:
        body = {"argument": f"Edit {n} of round {round_}."}
        return lambda: client.patch(url, body, format="json", HTTP_IF_MATCH=etag).status_code

    for round_ in range(5):  # a race is a matter of chance: run it a few times
        codes = at_once([edit(client, n, round_) for n, client in enumerate(clients)])
        assert sorted(codes) == [200] + [412] * 7, codes
        etag = clients[0].get(url)["ETag"]
    assert Claim.objects.get().revision_number == 6


def test_an_edit_racing_five_reviews_loses_none_of_them(
    postgresql: None, client_for: ClientFor, alice: User, inceptionv1: Model,
    settings_no_throttle: Callable[[], None],
) -> None:  # fmt: skip
    claim = post_claim(client_for(alice), FEATURE)
    url = f"/api/v1/claims/{claim['id']}/"
    reviewers = [
        client_for(User.objects.create_user(f"reviewer{n}", password="pw-123456")) for n in range(5)
    ]
    author = client_for(alice)

    def review(client: APIClient) -> Callable[[], int]:
        body = {"verdict": "support", "reason": "Cars.", "revision": 1}
        return lambda: client.post(f"{url}reviews/", body, format="json").status_code

    def edit() -> int:
        body = {"argument": "Revised."}
        return author.patch(url, body, format="json", HTTP_IF_MATCH=claim["etag"]).status_code

    codes = at_once([edit, *(review(client) for client in reviewers)])
    assert codes[0] == 200
    # A review of revision 1 that came after the edit is refused as stale (409); none fails.
    assert set(codes[1:]) <= {201, 409}, codes
    assert Review.objects.count() == codes[1:].count(201)
    assert Claim.objects.get().revision_number == 2
