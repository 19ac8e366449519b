from __future__ import annotations

import io
import re

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.test import Client

from people.models import Profile
from tests.annotations.conftest import PASSWORD, client_for, sign_up

SIGN_UP = {
    "username": "grace",
    "name": "Grace Researcher",
    "institution": "Interpretability Institute",
    "password1": PASSWORD,
    "password2": PASSWORD,
}


def test_a_newcomer_signs_up_with_a_name_and_institution_and_is_signed_in(
    client: Client, db: None
) -> None:
    response = client.post("/accounts/signup/?next=/claims/", SIGN_UP)
    assert response.status_code == 302 and response.url == "/claims/"
    profile = Profile.objects.get(user__username="grace")
    assert (profile.name, profile.institution) == ("Grace Researcher", "Interpretability Institute")
    header = client.get("/claims/").content.decode()
    assert 'href="/people/grace/">Grace Researcher</a>' in header
    assert 'id="logout"' in header


def test_a_bad_sign_up_is_a_400_that_says_why(client: Client, db: None) -> None:
    sign_up("grace", "Someone")
    response = client.post(
        "/accounts/signup/", SIGN_UP | {"password2": "something-else-1", "name": ""}
    )
    assert response.status_code == 400
    content = response.content.decode()
    assert "A user with that username already exists." in content
    assert "This field is required." in content
    assert User.objects.count() == 1


def test_sign_up_never_redirects_to_another_site(client: Client, db: None) -> None:
    response = client.post("/accounts/signup/", SIGN_UP | {"next": "https://evil.example/"})
    assert response.url == "/"


def test_log_in_and_log_out_with_post_only(client: Client, db: None) -> None:
    sign_up("grace", "Grace")
    assert 'href="/accounts/login/' in client.get("/claims/").content.decode()
    response = client.post("/accounts/login/", {"username": "grace", "password": PASSWORD})
    assert response.status_code == 302
    assert client.get("/accounts/logout/").status_code == 405  # a link cannot log you out
    assert client.post("/accounts/logout/").status_code == 302
    assert "_auth_user_id" not in client.session


def test_a_profile_shows_name_institution_and_can_be_edited_by_its_owner(db: None) -> None:
    grace = sign_up("grace", "Grace", "Old Lab")
    other = client_for(sign_up("bob", "Bob"))
    page = other.get("/people/grace/").content.decode()
    assert "<h1>Grace</h1>" in page and "Old Lab" in page and "edit profile" not in page
    mine = client_for(grace)
    assert "edit profile" in mine.get("/people/grace/").content.decode()
    response = mine.post("/accounts/profile/", {"name": "Grace H.", "institution": "New Lab"})
    assert response.status_code == 302
    grace.profile.refresh_from_db()
    assert (grace.profile.name, grace.profile.institution) == ("Grace H.", "New Lab")
    assert Client().get("/people/nobody/").status_code == 404


def test_users_without_a_profile_show_their_username(db: None) -> None:
    admin = User.objects.create_superuser("root", password=PASSWORD)
    page = client_for(admin).get("/people/root/").content.decode()
    assert "<h1>root</h1>" in page


def test_wrong_passwords_lock_that_username_out_from_that_address(client: Client, db: None) -> None:
    User.objects.create_user("target", password=PASSWORD)
    for _ in range(4):
        wrong = client.post("/accounts/login/", {"username": "target", "password": "nope"})
        assert wrong.status_code == 400 and "_auth_user_id" not in client.session
        assert "enter a correct username and password" in wrong.content.decode()
    fifth = client.post("/accounts/login/", {"username": "target", "password": "nope"})
    assert fifth.status_code == 429
    locked = client.post("/accounts/login/", {"username": "target", "password": PASSWORD})
    assert locked.status_code == 429 and "Too many attempts" in locked.content.decode()
    assert "_auth_user_id" not in client.session
    other = Client(REMOTE_ADDR="192.0.2.9")  # the same user from elsewhere is not locked out
    assert (
        other.post("/accounts/login/", {"username": "target", "password": PASSWORD}).status_code
        == 302
    )
    forged = Client(HTTP_X_FORWARDED_FOR="198.51.100.1")  # a header buys no fresh address
    response = forged.post("/accounts/login/", {"username": "target", "password": PASSWORD})
    assert response.status_code == 429


def logs_in(username: str, password: str) -> bool:
    response = Client().post("/accounts/login/", {"username": username, "password": password})
    return response.status_code == 302


def test_a_password_is_changed_and_reset_by_mail(
    client: Client, db: None, mailoutbox: list
) -> None:
    user = User.objects.create_user("grace2", password=PASSWORD, email="grace@lab.example")
    client.force_login(user)
    new = "another-long-pass-456"
    refused = client.post(
        "/accounts/password/",
        {"old_password": "wrong", "new_password1": new, "new_password2": new + "x"},
    )
    assert refused.status_code == 400 and "incorrect" in refused.content.decode()
    changed = client.post(
        "/accounts/password/",
        {"old_password": PASSWORD, "new_password1": new, "new_password2": new},
    )
    assert changed.status_code == 302
    assert logs_in("grace2", new) and not logs_in("grace2", PASSWORD)
    client.logout()
    asked = client.post("/accounts/password/reset/", {"email": "grace@lab.example"})
    assert asked.status_code == 302 and len(mailoutbox) == 1
    link = re.search(r"http://testserver(/accounts/password/reset/\S+/)", mailoutbox[0].body)
    assert link is not None
    form = client.get(link[1], follow=True)
    assert form.status_code == 200
    final = "a-third-long-pass-789"
    done = client.post(form.redirect_chain[-1][0], {"new_password1": final, "new_password2": final})
    assert done.status_code == 302
    assert logs_in("grace2", final)


def test_a_password_anyone_guesses_is_refused_at_sign_up(client: Client, db: None) -> None:
    for weak in ("a", "password", "12345678901"):
        response = client.post(
            "/accounts/signup/", SIGN_UP | {"password1": weak, "password2": weak}
        )
        assert response.status_code == 400 and b"errorlist" in response.content, weak
    assert not User.objects.exists()


def test_a_lab_scripts_its_accounts_with_a_command(db: None) -> None:
    out = io.StringIO()
    call_command(
        "user_create", "curie", "--name", "Marie Curie", "--institution", "Lab",
        "--staff", stdout=out,
    )  # fmt: skip
    assert "curie: staff member created, with no password (API tokens only)" in out.getvalue()
    curie = User.objects.get(username="curie")
    assert curie.is_staff and not curie.has_usable_password()
    assert curie.profile.name == "Marie Curie" and curie.profile.institution == "Lab"
    tokens = io.StringIO()
    call_command("api_token", "create", "curie", stdout=tokens)
    assert tokens.getvalue().strip()
    # Named as sign-up names people: "CURIE", and in fullwidth letters, are curie.
    for same in ("CURIE", "\uff43\uff55\uff52\uff49\uff45"):
        call_command("api_token", "create", same, stdout=tokens)
    assert curie.api_tokens.count() == 3
    for bad, message in (("curie", "exists already"), ("no spaces", "username")):
        with pytest.raises(CommandError, match=message):
            call_command("user_create", bad)
    # As sign-up sees names: "Curie", and "curie" in fullwidth letters, are curie.
    for same in ("Curie", "\uff43\uff55\uff52\uff49\uff45"):
        with pytest.raises(CommandError, match="exists already"):
            call_command("user_create", same)
    for option, message in (
        (["--name", "n" * 500], "--name: Ensure this value has at most 120"),
        (["--name", "a\x01b"], "--name: must not contain control characters"),
        (["--email", "notanemail"], "--email: Enter a valid email"),
        (["--email", "a" * 300 + "@b.com"], "--email: at most 254 characters"),
    ):
        with pytest.raises(CommandError, match=message):
            call_command("user_create", "marie", *option)
    with pytest.raises(CommandError, match="too similar to the username"):
        password = io.StringIO("mariecurie1")
        call_command("user_create", "mariecurie", "--password-stdin", stdin=password)
    with pytest.raises(CommandError, match="stdin gave none"):
        call_command("user_create", "marie", "--password-stdin", stdin=io.StringIO(""))
    # No password the log-in form could not send: a NUL, or stdin's bytes that are not
    # UTF-8 (read as surrogates).
    for typed, message in (
        ("Corr\x00ect-9!battery", "control character"),
        ("Corr\udcffect-9!battery", "not UTF-8"),
    ):
        with pytest.raises(CommandError, match=message):
            call_command("user_create", "marie", "--password-stdin", stdin=io.StringIO(typed))
    with pytest.raises(CommandError, match="username: give one"):
        call_command("user_create", "")
    assert not User.objects.filter(username="marie").exists()
    # A password typed on Windows ends in \r\n: it is the password without them.
    call_command(
        "user_create", "marie", "--password-stdin", stdin=io.StringIO("CorrectHorse9!battery\r\n")
    )
    assert User.objects.get(username="marie").check_password("CorrectHorse9!battery")
    # The longest username is its own default name, cut to a name's 120 characters.
    call_command("user_create", "u" * 150)
    assert User.objects.get(username="u" * 150).profile.name == "u" * 120
