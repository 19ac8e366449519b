"""A researcher posts a circuit claim from a neuron page; a colleague supports it."""

from __future__ import annotations

import re
from typing import Any

import pytest

from annotations.models import Claim, Status
from neurons.models import Model
from tests.annotations.conftest import PASSWORD

pytestmark = pytest.mark.e2e


def sign_up(page: Any, base: str, username: str, name: str, next_path: str) -> None:
    page.goto(f"{base}/accounts/signup/?next={next_path}")
    page.fill("#id_username", username)
    page.fill("#id_name", name)
    page.fill("#id_institution", "Vision Lab")
    page.fill("#id_password1", PASSWORD)
    page.fill("#id_password2", PASSWORD)
    page.click("#signup-form button[type=submit]")
    page.wait_for_url(f"{base}{next_path}")
    assert page.inner_text("#user").startswith(name)


def test_a_claim_is_posted_reviewed_and_shown_on_its_components_page(
    live_server: Any, inceptionv1: Model, page: Any
) -> None:
    base = live_server.url
    neuron_path = "/models/inceptionv1/mixed4c/447/"
    sign_up(page, base, "ada", "Ada Author", neuron_path)

    # The live preview reads the expression as it is typed, errors with their column.
    assert page.input_value("#id_expression") == "4c:447 = "
    page.fill("#id_expression", "4c:447 = 4b:373 + 4z:1")
    error = page.wait_for_selector(".expression-preview .preview-error")
    assert "Column 19: unknown layer '4z' in inceptionv1" in error.inner_text()
    page.fill("#id_expression", "4c:447 = 4b:373 + 4b:237")
    page.wait_for_selector(".expression-preview .preview-ok")
    drawn = page.inner_text(".expression-preview")
    assert "4b:373" in drawn and "4b:237" in drawn and "4c:447" in drawn

    page.fill("#id_label", "car detector from windows and wheels")
    page.fill("#id_argument", "Windows (4b:373) **above** wheels (4b:237).")
    page.click("#claim-form button[type=submit]")
    page.wait_for_url(re.compile(r".*/claims/\d+/$"))
    claim = Claim.objects.get()
    assert page.inner_text("#claim-status") == "proposed"
    assert page.inner_text("#argument strong") == "above"
    assert page.get_attribute("#argument a.neuron-ref >> nth=0", "href") == (
        "/models/inceptionv1/mixed4b/373/"
    )
    claim_path = f"/claims/{claim.pk}/"

    page.click("#logout")
    page.wait_for_selector("#user >> text=Sign up")
    sign_up(page, base, "cole", "Cole League", claim_path)
    page.check("#review-form input[name=verdict][value=support]")
    page.fill("#review-form textarea[name=reason]", "Ablating 4b:373 removes the response.")
    page.click("#review-form button[type=submit]")
    page.wait_for_selector("#claim-status.status-supported")
    assert page.inner_text("#claim-status") == "supported"
    assert "1 support" in page.inner_text("#review-counts")
    claim.refresh_from_db()
    assert claim.status == Status.SUPPORTED

    page.goto(f"{base}/models/inceptionv1/mixed4b/373/")
    used = page.inner_text("#claims-uses")
    assert "car detector from windows and wheels" in used and "supported" in used
    page.click(f"#claims-uses a[href='{claim_path}']")
    page.wait_for_url(f"{base}{claim_path}")
