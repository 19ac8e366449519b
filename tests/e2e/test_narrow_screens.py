"""Every page fits a phone's 390 px: nothing wider than the screen but what scrolls alone."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User

from annotations.services import claim_create
from neurons.models import Model
from neurons.references import resolve

pytestmark = pytest.mark.e2e

PAGES = [
    "/models/",
    "/models/inceptionv1/",
    "/models/inceptionv1/mixed4c/",
    "/models/inceptionv1/mixed4c/447/",
    "/claims/",
    "/jobs/",
    "/",
    "/search/?q=car",
    "/models/mobilenet_v2/",
    "/accounts/login/",
    "/accounts/signup/",
]


def test_pages_fit_a_390_px_screen_and_have_a_favicon(
    live_server: Any, inceptionv1: Model, browser: Any
) -> None:
    author = User.objects.create_user("narrow", password="pw-narrow-123")
    claim = claim_create(
        author=author, target=resolve("inceptionv1/4c:447"), kind="circuit",
        label="a long label " * 8, argument="An argument.", expression="4c:447 = 4b:373 + 4b:237",
    )  # fmt: skip
    one_word = claim_create(
        author=author,
        target=resolve("inceptionv1/4c:447"),
        kind="feature",
        label="wheel" * 40,
        argument="https://example.com/" + "x" * 300,
    )  # fmt: skip: a word of 200 letters and a long URL wrap in their boxes
    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    try:
        for path in [*PAGES, claim.get_absolute_url(), one_word.get_absolute_url()]:
            page.goto(live_server.url + path)
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= 390, (path, width)
        icon = page.evaluate("document.querySelector('link[rel=icon]').href")
        assert page.request.get(icon).status == 200
    finally:
        context.close()
