from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.test import Client
from rest_framework.test import APIClient

from api.models import ApiToken
from api.services import api_token_create, api_token_revoke


def me(key: str, keyword: str = "Token") -> tuple[int, dict]:
    response = APIClient().get("/api/v1/me/", HTTP_AUTHORIZATION=f"{keyword} {key}")
    return response.status_code, response.json()


def test_a_token_is_stored_only_as_a_hash(alice: User) -> None:
    token, key = api_token_create(user=alice, name="notebook")
    stored = ApiToken.objects.get(pk=token.pk)
    assert key.startswith(stored.prefix) and key.startswith("msc_")
    assert key not in {stored.key_hash, stored.prefix, stored.name}
    assert len(stored.key_hash) == 64


def test_a_token_authenticates_with_the_token_or_bearer_keyword(alice: User) -> None:
    token, key = api_token_create(user=alice, name="notebook")
    for keyword in ["Token", "Bearer", "token"]:
        status, body = me(key, keyword)
        assert status == 200
        assert body["username"] == "alice" and body["auth"] == "token"
        assert body["token"] == token.prefix
    token.refresh_from_db()
    assert token.last_used is not None


def test_a_revoked_token_is_refused(alice: User) -> None:
    token, key = api_token_create(user=alice, name="notebook")
    api_token_revoke(token=token)
    status, body = me(key)
    assert status == 401
    assert body["error"]["code"] == "authentication_failed"
    assert "revoked" in body["error"]["message"]


def test_an_unknown_or_malformed_token_is_refused_with_the_error_shape(db: None) -> None:
    for header in ["Token nope", "Token", "Bearer a b", "Token \xe9t\xe9"]:
        response = APIClient().get("/api/v1/me/", HTTP_AUTHORIZATION=header)
        assert response.status_code == 401, header
        assert response.json()["error"]["status"] == 401
        assert response["WWW-Authenticate"].startswith("Token")


def test_a_token_of_a_deactivated_user_is_refused(alice: User) -> None:
    _, key = api_token_create(user=alice, name="notebook")
    alice.is_active = False
    alice.save()
    assert me(key)[0] == 401


def test_anonymous_requests_read_as_nobody(api: APIClient, db: None) -> None:
    body = api.get("/api/v1/me/").json()
    assert body == {
        "authenticated": False,
        "username": None,
        "is_staff": False,
        "auth": "anonymous",
        "token": None,
    }


def test_a_token_needs_a_name(alice: User) -> None:
    with pytest.raises(Exception, match="name"):
        api_token_create(user=alice, name="  ")


def test_the_command_creates_lists_and_revokes_tokens(alice: User) -> None:
    out = StringIO()
    call_command(
        "api_token", "create", "alice", "--name", "lab pipeline", stdout=out, stderr=StringIO()
    )
    key = out.getvalue().strip()
    assert me(key)[0] == 200

    listing = StringIO()
    call_command("api_token", "list", "alice", stdout=listing)
    assert "lab pipeline" in listing.getvalue() and "active" in listing.getvalue()
    assert key not in listing.getvalue()

    call_command("api_token", "revoke", "alice", key[:10], stdout=StringIO())
    assert me(key)[0] == 401
    listing = StringIO()
    call_command("api_token", "list", "alice", stdout=listing)
    assert "revoked" in listing.getvalue()


def test_the_command_revokes_all_tokens_of_a_user(alice: User) -> None:
    keys = [api_token_create(user=alice, name=f"t{i}")[1] for i in range(2)]
    with pytest.raises(CommandError, match="a token's prefix or --all, not both"):
        call_command("api_token", "revoke", "alice", keys[0][:10], "--all", stdout=StringIO())
    assert all(me(key)[0] == 200 for key in keys)  # none revoked
    out = StringIO()
    call_command("api_token", "revoke", "alice", "--all", stdout=out)
    assert "Revoked 2" in out.getvalue()
    assert all(me(key)[0] == 401 for key in keys)


def test_the_command_says_what_is_wrong(alice: User) -> None:
    with pytest.raises(CommandError, match="no user 'zed'"):
        call_command("api_token", "list", "zed")
    with pytest.raises(CommandError, match="say which token"):
        call_command("api_token", "revoke", "alice")
    with pytest.raises(CommandError, match="no token starting with"):
        call_command("api_token", "revoke", "alice", "msc_zzzzzz")


def test_the_token_page_shows_a_new_key_once_and_revokes(alice: User) -> None:
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(alice)
    page = browser.get("/account/tokens/")
    assert page.status_code == 200 and b"No tokens yet" in page.content
    csrf = page.cookies["csrftoken"].value

    created = browser.post("/account/tokens/", {"name": "notebook", "csrfmiddlewaretoken": csrf})
    assert created.status_code == 201
    key = created.context["new_key"]
    assert key.encode() in created.content
    assert me(key)[0] == 200
    again = browser.get("/account/tokens/")
    assert key.encode() not in again.content and b"notebook" in again.content

    token = ApiToken.objects.get(user=alice)
    revoked = browser.post(
        f"/account/tokens/{token.id}/revoke/", {"csrfmiddlewaretoken": csrf}, follow=True
    )
    assert revoked.status_code == 200 and b"is revoked" in revoked.content
    assert me(key)[0] == 401


def test_the_token_page_needs_csrf_and_a_name(alice: User) -> None:
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(alice)
    assert browser.post("/account/tokens/", {"name": "x"}).status_code == 403
    csrf = browser.get("/account/tokens/").cookies["csrftoken"].value
    response = browser.post("/account/tokens/", {"name": " ", "csrfmiddlewaretoken": csrf})
    assert response.status_code == 400 and b"Give the token a name" in response.content
    assert not ApiToken.objects.exists()


def test_nobody_revokes_the_token_of_another_user(alice: User, bob: User) -> None:
    token, key = api_token_create(user=alice, name="notebook")
    browser = Client()
    browser.force_login(bob)
    assert browser.post(f"/account/tokens/{token.id}/revoke/").status_code == 404
    assert me(key)[0] == 200


def test_the_token_page_needs_a_login(db: None) -> None:
    response = Client().get("/account/tokens/")
    assert response.status_code == 302
