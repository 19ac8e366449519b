"""Input that no view should see: refused with a 400 that names it, on every page."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlencode

import pytest
from django.contrib.auth.models import User
from django.test import Client
from rest_framework.test import APIClient

from annotations.models import Claim
from neurons.models import Model


@pytest.mark.parametrize(
    "url",
    [
        "/claims/?q=%00",
        "/claims/?author=%00",
        "/claims/?model=%00",
        "/claims/?neuron=4c%00:1",
        "/n/?model=%00",
        "/n/?q=%00",
        "/people/%00/",
        "/claims/preview/?expression=%00&target=inceptionv1/4c:447",
        "/models/inceptionv1/?x%00=1",
    ],
)
def test_a_nul_byte_in_a_page_request_is_a_400_naming_it(
    client: Client, inceptionv1: Model, url: str
) -> None:
    response = client.get(url)
    assert response.status_code == 400
    assert "NUL" in response.content.decode()


def test_a_nul_byte_in_an_api_request_is_a_400_in_the_error_shape(
    client: Client, inceptionv1: Model
) -> None:
    response = client.get("/api/v1/claims/?q=%00")
    assert response.status_code == 400
    # Named by its key, as a serializer names a field: not "q: q: NUL bytes ...".
    assert response.json()["error"]["fields"] == {"q": ["NUL bytes (%00) are not allowed"]}


def test_a_form_field_given_twice_is_a_400_naming_it_on_pages_and_in_the_api(
    client: Client, inceptionv1: Model, alice: User, client_for: Callable[[User], APIClient]
) -> None:
    claim = {"kind": "feature", "target": "inceptionv1/4c:447", "argument": "wheels"}
    twice = urlencode({**claim, "label": ["cars", "trucks"]}, doseq=True)
    form = "application/x-www-form-urlencoded"
    client.force_login(alice)
    page = client.post("/claims/new/", twice, content_type=form)
    assert page.status_code == 400
    assert "label: given 2 times; give it once" in page.content.decode()
    api = client_for(alice).post("/api/v1/claims/", twice, content_type=form)
    assert api.status_code == 400
    assert api.json()["error"]["fields"] == {"label": ["given 2 times; give it once"]}
    assert not Claim.objects.exists()
    # A field that takes a list takes each value given.
    kinds = urlencode({"neuron": "inceptionv1/4c:447", "kinds": ["featurevis", "bogus"]}, True)
    listed = client_for(alice).post("/api/v1/render-jobs/", kinds, content_type=form)
    assert listed.status_code == 400
    assert list(listed.json()["error"]["fields"]) == ["kinds.1"]  # the second one read


def test_the_admin_s_forms_still_send_lists(client: Client, alice: User, bob: User) -> None:
    # Rows selected for an action, as the admin's changelist sends them.
    curator = User.objects.create_superuser("root", password="pw-root-123")
    client.force_login(curator)
    selected = urlencode(
        {"action": "delete_selected", "_selected_action": [alice.pk, bob.pk]}, doseq=True
    )
    response = client.post(
        "/admin/auth/user/", selected, content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 200  # the confirmation page, listing both
    assert "alice" in response.content.decode() and "bob" in response.content.decode()


@pytest.mark.parametrize("charset", ["UTF8", "utf-16", "iso-8859-1"])  # an unknown one: UTF-8
def test_a_page_form_in_another_charset_is_a_400_for_a_browser_with_a_csrf_cookie(
    db: None, charset: str
) -> None:
    # Django reads forms in UTF-8 only. Its 400 handler checked the CSRF token again, which
    # read the body again and raised again: a bare 500, for any visitor with the cookie.
    browser = Client(enforce_csrf_checks=True)
    browser.cookies["csrftoken"] = "abcdefabcdefabcdefabcdefabcdefab"
    response = browser.generic(
        "POST",
        "/search/",
        b"a=b",
        content_type=f"application/x-www-form-urlencoded; charset={charset}",
    )
    assert response.status_code == 400
    assert "Content-Type: charset" in response.content.decode()
