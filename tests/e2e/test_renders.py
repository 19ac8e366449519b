"""In a browser: a neuron page's objective tabs switch without a reload, and a job's
requester cancels it from /jobs/."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User

from jobs import planning
from jobs.models import ArtifactKind, RenderJob
from neurons.models import Model, Neuron
from tests.jobs.test_render_pages import stored

pytestmark = pytest.mark.e2e


def sign_in(page: Any, base: str, username: str, password: str, next_path: str) -> None:
    page.goto(f"{base}/accounts/login/?next={next_path}")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("main form button[type=submit]")
    page.wait_for_url(f"{base}{next_path}")


def test_tabs_switch_objectives_and_a_requester_cancels_a_job(
    live_server: Any, mobilenet: Model, page: Any
) -> None:
    base = live_server.url
    neuron = Neuron.objects.select_related("layer__model").get(
        layer__model=mobilenet, layer__name="features_16", index=5
    )
    stored(neuron, ArtifactKind.FEATUREVIS)
    stored(neuron, ArtifactKind.FEATUREVIS_NEGATIVE)
    User.objects.create_user("ada", password="pw-ada-12345")
    path = neuron.get_absolute_url()
    sign_in(page, base, "ada", "pw-ada-12345", path)

    assert page.is_visible("#panel-channel img") and not page.is_visible("#panel-negative")
    page.click("#tab-negative")
    assert page.is_visible("#panel-negative img") and not page.is_visible("#panel-channel")
    assert page.get_attribute("#tab-negative", "aria-selected") == "true"
    assert page.url.endswith("?objective=negative#tab-negative")  # the link to share

    page.click("#tab-neuron")
    page.click("#panel-neuron button[type=submit]")  # render the missing objective
    page.wait_for_url(f"{base}{path}?objective=neuron")
    job = RenderJob.objects.get(kind=ArtifactKind.FEATUREVIS_NEURON)
    assert page.is_visible(f"#render-jobs [data-job-id='{job.pk}']")

    page.goto(f"{base}/jobs/")
    assert page.inner_text(f"#job-{job.pk} td >> nth=3") == "ada"
    page.once("dialog", lambda dialog: dialog.accept())  # "Cancel job N? ..."
    page.click(f"#job-{job.pk} button.cancel")
    page.wait_for_selector(f"#job-{job.pk} .job-status >> text=cancelled")
    job.refresh_from_db()
    assert job.status == RenderJob.Status.CANCELLED and "cancelled by ada" in job.error
    assert page.locator(f"#job-{job.pk} button.cancel").count() == 0
    other = planning.render_job_create(
        model=mobilenet, layer=neuron.layer, kind=ArtifactKind.FEATUREVIS, params={},
        channels=range(1), enqueue=False,
    )  # fmt: skip
    page.reload()
    assert page.inner_text(f"#job-{other.pk} td >> nth=3") == "a command"
    assert page.locator(f"#job-{other.pk} button.cancel").count() == 0  # not hers


def test_the_job_list_follows_all_its_jobs_in_one_request_a_poll(
    live_server: Any, mobilenet: Model, page: Any
) -> None:
    layer = mobilenet.layers.get(name="features_16")
    jobs = [
        planning.render_job_create(
            model=mobilenet,
            layer=layer,
            kind=ArtifactKind.FEATUREVIS,
            params={"steps": 64 + i},
            channels=range(1),
            enqueue=False,
        )
        for i in range(3)
    ]
    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.url))
    page.goto(f"{live_server.url}/jobs/")

    RenderJob.objects.filter(pk=jobs[1].pk).update(
        status=RenderJob.Status.RUNNING, progress_total=1, progress_note="step 9 of 64"
    )

    page.wait_for_selector(f"#job-{jobs[1].pk} .job-note >> text=step 9 of 64")
    assert page.inner_text(f"#job-{jobs[1].pk} .job-status") == "running"
    polls = [url for url in asked if "/status/" in url]
    assert polls and all(url.startswith(f"{live_server.url}/jobs/status/?") for url in polls)
    assert all(f"id={job.pk}" in url for url in polls for job in jobs)


def test_a_label_typed_in_the_header_box_finds_its_neuron(
    live_server: Any, mobilenet: Model, page: Any
) -> None:
    from annotations.services import claim_create
    from neurons.references import resolve

    author = User.objects.create_user("lee", password="pw-lee-12345")
    claim_create(
        author=author, target=resolve("mobilenet_v2/f10:3"), kind="feature",
        label="curve detector", argument="Curves at every angle.",
    )  # fmt: skip
    page.goto(f"{live_server.url}/")
    assert "curve detector" in page.inner_text("#home-claims")
    page.fill("#search input[name=q]", "curve")
    page.press("#search input[name=q]", "Enter")
    page.wait_for_selector("#hits")
    page.click("#hits a.ref")
    page.wait_for_url(f"{live_server.url}/models/mobilenet_v2/features_10/3/")
    assert page.inner_text("#neuron-label") == "curve detector"
    # Signed in, they keep it in a new list, from the neuron's page.
    sign_in(page, live_server.url, "lee", "pw-lee-12345", "/models/mobilenet_v2/features_10/3/")
    page.fill("#list-new-form input[name=title]", "curves to check")
    page.fill("#list-new-form input[name=note]", "the clearest one")
    page.click("#list-new-form button[type=submit]")
    page.wait_for_selector("#neuron-lists >> text=curves to check")
    page.click("#neuron-lists a >> text=curves to check")
    page.wait_for_selector("#entries >> text=the clearest one")
    page.goto(f"{live_server.url}/models/mobilenet_v2/features_10/3/")
    # A reference typed on a model's page is that model's.
    page.fill("#search input[name=q]", "f12:42")
    page.press("#search input[name=q]", "Enter")
    page.wait_for_url(f"{live_server.url}/models/mobilenet_v2/features_12/42/")


def test_a_researcher_uploads_a_photo_and_follows_a_neuron_that_fires_on_it(
    live_server: Any, mobilenet: Model, page: Any
) -> None:
    from jobs import runner
    from jobs.models import Exploration
    from tests.conftest import REPO

    User.objects.create_user("uma", password="pw-uma-12345")
    sign_in(page, live_server.url, "uma", "pw-uma-12345", "/explore/")
    page.set_input_files("#explore-form input[name=image]", str(REPO / "demo/photos/0004.jpg"))
    page.click("#explore-form button[type=submit]")
    page.wait_for_selector("#exploration-job")
    exploration = Exploration.objects.get()
    runner.render_job_execute(job_id=exploration.job_id)  # the worker's part
    page.wait_for_selector("#layer-f10", timeout=30_000)  # the page follows the job
    assert page.locator(".explore-layer").count() == 19
    heat = page.locator("#layer-f10 img.heat").first
    assert heat.get_attribute("src").startswith("data:image/png;base64,")
    first = page.locator("#layer-f10 a.fire").first
    href = first.get_attribute("href")
    assert href.startswith("/models/mobilenet_v2/features_10/")
    # Someone claims what the neuron is: its label shows on its tile here.
    from annotations.services import claim_create
    from neurons.references import resolve

    index = int(href.rstrip("/").rsplit("/", 1)[1])
    claim_create(
        author=User.objects.get(username="uma"), target=resolve(f"mobilenet_v2/f10:{index}"),
        kind="feature", label="dog snout detector", argument="Snouts in its top examples.",
    )  # fmt: skip
    page.reload()
    first = page.locator("#layer-f10 a.fire").first
    assert first.locator(".tile-label").inner_text() == "dog snout detector"
    first.click()
    page.wait_for_url(f"{live_server.url}{href}")
    assert page.inner_text("#neuron-label") == "dog snout detector"
    page.goto(f"{live_server.url}/explore/")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#uploads button[type=submit]")
    page.wait_for_selector("text=Deleted 0004.jpg")
    assert not Exploration.objects.exists()
