from __future__ import annotations

from django.contrib.auth.models import User
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
