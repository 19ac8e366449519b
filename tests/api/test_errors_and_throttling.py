from __future__ import annotations

import copy
from collections.abc import Callable

import pytest
from django.contrib.auth.models import User
from django.test import Client, RequestFactory
from pytest_django.fixtures import Settings as SettingsWrapper
from rest_framework.test import APIClient

from api.handlers import server_error
from neurons.models import Model


def assert_error_shape(body: dict, status: int) -> dict:
    assert set(body) == {"error"}
    error = body["error"]
    assert set(error) == {"status", "code", "message", "fields"}
    assert error["status"] == status
    assert isinstance(error["message"], str) and error["message"]
    return error


def test_a_missing_catalog_item_is_a_404_in_the_error_shape(
    api: APIClient, inceptionv1: Model
) -> None:
    response = api.get("/api/v1/neurons/inceptionv1/mixed4c/600/")
    error = assert_error_shape(response.json(), 404)
    assert error["code"] == "not_found"
    assert "index 600 is out of range" in error["message"]


def test_an_unknown_api_path_is_a_json_404(api: APIClient, db: None) -> None:
    response = api.get("/api/v1/nothing/here/")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    error = assert_error_shape(response.json(), 404)
    assert "/api/v1/nothing/here/" in error["message"]


def test_under_a_script_name_prefix_api_errors_keep_their_shape(
    api: APIClient, alice: User, client_for: Callable[[User], APIClient], settings: SettingsWrapper
) -> None:
    # The site mounted at /microscope/ (SCRIPT_NAME): its paths inside start at /api/.
    settings.MICROSCOPE_MAX_BODY = 100
    missing = api.get("/api/v1/nothing/", SCRIPT_NAME="/microscope")
    big = api.post(
        "/api/v1/claims/", "x" * 200, content_type="text/plain", SCRIPT_NAME="/microscope"
    )
    bad = client_for(alice).post(
        "/api/v1/claims/", "body=%FF", content_type="application/x-www-form-urlencoded",
        SCRIPT_NAME="/microscope",
    )  # fmt: skip
    page = api.get("/models/nothing/", SCRIPT_NAME="/microscope")

    assert (missing.status_code, missing["Content-Type"]) == (404, "application/json")
    assert "/microscope/api/v1/nothing/" in assert_error_shape(missing.json(), 404)["message"]
    assert (big.status_code, big["Content-Type"]) == (413, "application/json")
    assert (bad.status_code, bad["Content-Type"]) == (400, "application/json")
    assert "not UTF-8" in str(bad.json())
    assert page.status_code == 404 and "html" in page["Content-Type"]


def test_pages_outside_the_api_keep_their_html_404(client: Client, db: None) -> None:
    response = client.get("/models/nothing/")
    assert response.status_code == 404
    assert "html" in response["Content-Type"]


def test_a_wrong_method_is_a_405_in_the_error_shape(api: APIClient, alice: User) -> None:
    api.force_authenticate(alice)
    response = api.delete("/api/v1/me/")
    assert assert_error_shape(response.json(), 405)["code"] == "method_not_allowed"


def test_anonymous_writes_are_401_with_a_challenge(api: APIClient, db: None) -> None:
    response = api.post("/api/v1/me/", {})
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Token")
    assert assert_error_shape(response.json(), 401)["code"] == "not_authenticated"


@pytest.fixture
def rates(settings: SettingsWrapper) -> SettingsWrapper:
    settings.REST_FRAMEWORK = copy.deepcopy(settings.REST_FRAMEWORK)
    settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] = {"anon": "3/min", "user": "5/min"}
    return settings


def test_anonymous_clients_are_throttled_with_retry_after(
    rates: SettingsWrapper, api: APIClient, inceptionv1: Model
) -> None:
    seen = [api.get("/api/v1/models/") for _ in range(4)]
    assert [r.status_code for r in seen] == [200, 200, 200, 429]
    assert [r["X-RateLimit-Remaining"] for r in seen] == ["2", "1", "0", "0"]
    assert seen[0]["X-RateLimit-Limit"] == "3"
    throttled = seen[-1]
    assert 0 < int(throttled["Retry-After"]) <= 60
    assert assert_error_shape(throttled.json(), 429)["code"] == "throttled"


def test_a_forged_forwarded_for_header_gets_no_fresh_allowance(
    rates: SettingsWrapper, api: APIClient, inceptionv1: Model
) -> None:
    seen = [
        api.get("/api/v1/models/", HTTP_X_FORWARDED_FOR=f"203.0.113.{n}").status_code
        for n in range(4)
    ]
    assert seen == [200, 200, 200, 429]


def test_behind_a_trusted_proxy_the_client_is_the_address_it_forwards(
    rates: SettingsWrapper, api: APIClient, inceptionv1: Model
) -> None:
    rates.MICROSCOPE_TRUSTED_PROXIES = 1
    # The proxy appends the address it saw; what the client wrote before it is ignored.
    first = [
        api.get("/api/v1/models/", HTTP_X_FORWARDED_FOR=f"203.0.113.{n}, 198.51.100.7")
        for n in range(4)
    ]
    first = [response.status_code for response in first]
    other = api.get("/api/v1/models/", HTTP_X_FORWARDED_FOR="198.51.100.8")
    assert first == [200, 200, 200, 429] and other.status_code == 200


def test_each_user_has_their_own_allowance(
    rates: SettingsWrapper,
    client_for: Callable[[User], APIClient],
    alice: User,
    bob: User,
    inceptionv1: Model,
) -> None:
    as_alice, as_bob = client_for(alice), client_for(bob)
    assert [as_alice.get("/api/v1/me/").status_code for _ in range(6)] == [200] * 5 + [429]
    response = as_bob.get("/api/v1/me/")
    assert response.status_code == 200
    assert response["X-RateLimit-Limit"] == "5" and response["X-RateLimit-Remaining"] == "4"


def test_a_server_error_under_the_api_is_json_and_elsewhere_html(db: None) -> None:
    api_error = server_error(RequestFactory().get("/api/v1/claims/"))
    assert api_error.status_code == 500 and api_error["Content-Type"] == "application/json"
    page_error = server_error(RequestFactory().get("/claims/"))
    assert page_error.status_code == 500 and "html" in page_error["Content-Type"]
