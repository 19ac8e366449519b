"""Cancelling a job, from its page or the API: its worker stops within a step, what it
rendered is kept, and asking again renders only the rest. Who asked, and for how long it
ran, are on /jobs/."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.contrib.auth.models import User
from django.test import Client
from pytest_django.fixtures import Settings
from rest_framework.test import APIClient

from jobs import lifecycle, planning, runner
from jobs.models import Artifact, ArtifactKind, RenderJob
from neurons.models import Layer
from tests.jobs.conftest import TINY

pytestmark = pytest.mark.django_db


def _job(layer: Layer, user: User | None, channels: range = range(4)) -> RenderJob:
    return planning.render_job_create(
        model=layer.model,
        layer=layer,
        kind=ArtifactKind.FEATUREVIS,
        params=TINY,
        channels=channels,
        enqueue=False,
        requested_by=user,
    )


def test_a_running_job_cancelled_by_its_requester_stops_within_a_step_and_keeps_its_renders(
    layer: Layer,
    alice: User,
    bob: User,
    client_for: Callable[[User], APIClient],
    settings: Settings,
) -> None:
    settings.MICROSCOPE_RENDER_BATCH = 1  # one channel stored at a time
    settings.MICROSCOPE_JOB_PROGRESS_MS = 0  # every report is written (and sees a cancel)
    job = _job(layer, alice)
    seen: list[tuple[int, str]] = []
    answers: dict[str, int] = {}

    def progress(done: int, total: int) -> None:
        job.refresh_from_db()
        seen.append((done, job.progress_note))
        if done == 2 and not answers:  # two channels stored, the third under way
            answers["bob"] = (
                client_for(bob).post(f"/api/v1/render-jobs/{job.pk}/cancel/").status_code
            )
            answers["alice"] = (
                client_for(alice).post(f"/api/v1/render-jobs/{job.pk}/cancel/").status_code
            )

    assert (
        runner.render_job_execute(job_id=job.pk, progress=progress)
        is lifecycle.ClaimOutcome.CLAIMED
    )
    job.refresh_from_db()
    assert answers == {"bob": 403, "alice": 200}
    assert job.status == RenderJob.Status.CANCELLED
    assert job.error == "cancelled by alice; what was rendered is kept"
    # Step-level progress was on the row while it ran: "channel 2: step 1 of 4", ...
    assert (0, "channel 0: step 1 of 4") in seen and (1, "channel 1: step 4 of 4") in seen
    # It stopped at the first step after the cancel: channel 2 was never stored.
    assert seen[-1][0] == 2
    assert sorted(Artifact.objects.filter(job=job).values_list("neuron__index", flat=True)) == [
        0,
        1,
    ]
    assert job.duration is not None and job.duration >= 0
    plan = planning.render_request(
        model=layer.model,
        layers=[layer],
        kinds=[ArtifactKind.FEATUREVIS],
        channels=range(4),
        featurevis=TINY,
    )
    assert (plan.existing, plan.missing) == (2, 2)


def test_a_cancelled_queued_job_is_never_claimed(layer: Layer, alice: User) -> None:
    job = _job(layer, alice)
    assert lifecycle.render_job_cancel(job_id=job.pk, by="alice")
    assert not lifecycle.render_job_cancel(job_id=job.pk, by="alice")  # ended already
    assert runner.render_job_execute(job_id=job.pk) is lifecycle.ClaimOutcome.FINISHED
    job.refresh_from_db()
    assert job.status == RenderJob.Status.CANCELLED and job.started is None
    assert not Artifact.objects.filter(job=job).exists()
    assert not lifecycle.render_job_sweep()["republished"]


def test_only_its_requester_or_staff_may_cancel_a_job_over_the_api(
    layer: Layer,
    alice: User,
    bob: User,
    staff: User,
    api: APIClient,
    client_for: Callable[[User], APIClient],
) -> None:
    mine, commands = _job(layer, alice), _job(layer, None, range(4, 8))
    assert api.post(f"/api/v1/render-jobs/{mine.pk}/cancel/").status_code in (401, 403)
    refused = client_for(bob).post(f"/api/v1/render-jobs/{mine.pk}/cancel/")
    assert refused.status_code == 403 and "staff" in refused.json()["error"]["message"]
    assert client_for(alice).post(f"/api/v1/render-jobs/{commands.pk}/cancel/").status_code == 403
    body = client_for(staff).post(f"/api/v1/render-jobs/{commands.pk}/cancel/").json()
    assert body["status"] == "cancelled" and body["requested_by"] == ""
    body = client_for(alice).get(f"/api/v1/render-jobs/{mine.pk}/").json()
    assert (
        body["requested_by"] == "alice" and body["status"] == "queued" and body["duration"] is None
    )
    again = client_for(staff).post(f"/api/v1/render-jobs/{commands.pk}/cancel/")
    assert again.status_code == 200 and again.json()["status"] == "cancelled"  # as it is
    assert client_for(alice).post(f"/api/v1/render-jobs/{commands.pk}/cancel/").status_code == 403
    assert client_for(alice).post("/api/v1/render-jobs/999999/cancel/").status_code == 404


def test_the_jobs_page_shows_who_asked_and_a_cancel_button_to_them_only(
    layer: Layer, alice: User, bob: User
) -> None:
    job = _job(layer, alice)
    page = Client()
    page.force_login(bob)
    html = page.get("/jobs/").content.decode()
    assert f'id="job-{job.pk}"' in html and "<td>alice</td>" in html
    assert f"/jobs/{job.pk}/cancel/" not in html
    assert page.post(f"/jobs/{job.pk}/cancel/").status_code == 403
    page.force_login(alice)
    assert f"/jobs/{job.pk}/cancel/" in page.get("/jobs/").content.decode()
    response = page.post(f"/jobs/{job.pk}/cancel/", {"next": "https://elsewhere.example/"})
    assert response.status_code == 302 and response["Location"] == "/jobs/"
    job.refresh_from_db()
    assert job.status == RenderJob.Status.CANCELLED
    html = page.get("/jobs/").content.decode()
    assert "cancelled by alice" in html and f"/jobs/{job.pk}/cancel/" not in html
    status = page.get(f"/jobs/{job.pk}/status/").json()
    assert status["status"] == "cancelled" and "duration" in status and "note" in status
    # Ended, it is still not bob's to cancel: the same answer as while it ran.
    page.force_login(bob)
    assert page.post(f"/jobs/{job.pk}/cancel/").status_code == 403


def test_claims_evidence_jobs_are_not_cancelled_by_hand(
    layer: Layer, staff: User, client_for: Callable[[User], APIClient]
) -> None:
    # Their claim's evidence row would wait for them for ever: they end as the claim says.
    job = planning.render_job_create(
        model=layer.model, layer=layer, kind="evidence", params={"evidence": 1},
        channels=range(1), enqueue=False,
    )  # fmt: skip
    refused = client_for(staff).post(f"/api/v1/render-jobs/{job.pk}/cancel/")
    assert refused.status_code == 403 and "evidence" in refused.json()["error"]["message"]
    page = Client()
    page.force_login(staff)
    assert page.post(f"/jobs/{job.pk}/cancel/").status_code == 403
    job.refresh_from_db()
    assert job.status == RenderJob.Status.QUEUED
