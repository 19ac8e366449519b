"""Evidence from the model for circuit claims: asked for on commit when a claim is posted or
revised, computed by the worker step (called directly here, on MobileNetV2's real weights,
on the CPU, over six photos), shown on the claim page and in the API."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from pytest_django.fixtures import Settings
from rest_framework.test import APIClient

from annotations.models import Claim, Evidence
from annotations.services import claim_create, claim_update
from jobs import runner
from jobs.models import Artifact, ArtifactKind, RenderJob
from neurons.models import Model
from neurons.references import resolve
from render import organisms
from render.weights import expanded_weights, input_ranking
from tests.annotations.conftest import client_for
from tests.conftest import REPO

TARGET = "mobilenet_v2/f3:7"


@pytest.fixture(autouse=True)
def few_draws(settings: Settings) -> None:
    settings.MICROSCOPE_EVIDENCE_DRAWS = 20  # p down to 1/21: enough here, and fast


def photos_corpus(folder: Path, settings: Settings, count: int) -> Path:
    folder.mkdir()
    for photo in sorted((REPO / "demo" / "photos").glob("*.jpg"))[:count]:
        shutil.copyfile(photo, folder / photo.name)
    settings.MICROSCOPE_EXAMPLES_DIR = str(folder)
    return folder


@pytest.fixture
def corpus(tmp_path: Path, settings: Settings) -> Path:
    """Six demo photos as the configured corpus: the target's examples are swept from it."""
    return photos_corpus(tmp_path / "corpus", settings, 6)


@pytest.fixture
def top_two(mobilenet: Model) -> list[str]:
    """The target's two strongest inputs by expanded weights, as the claim names them."""
    organism = organisms.get("mobilenet_v2")
    loaded = organisms.load(organism, organisms.find_weights(organism, Path("/nonexistent")))
    w = expanded_weights(loaded.model, organism, "features_3", channels=[7])
    return [f"f2:{c.channel}" for c in input_ranking(w, 7)[:2]]


def post_circuit(author: User, target: str, expression: str) -> Claim:
    return claim_create(
        author=author,
        target=resolve(target),
        kind="circuit",
        label="a sum of its two strongest inputs",
        argument="The expanded weights say so.",
        expression=expression,
    )


def run(evidence: Evidence) -> Evidence:
    runner.render_job_execute(job_id=evidence.job_id)
    evidence.refresh_from_db()
    return evidence


def test_posting_a_circuit_claim_enqueues_its_evidence_on_commit(
    author: User, mobilenet: Model, django_capture_on_commit_callbacks: object
) -> None:
    with django_capture_on_commit_callbacks() as callbacks:
        claim = post_circuit(author, TARGET, "f3:7 = f2:1 + f2:2")
    evidence = Evidence.objects.get(revision=claim.current_revision)
    assert evidence.status == Evidence.Status.QUEUED
    assert evidence.job.kind == "evidence" and evidence.job.target == "mobilenet_v2/features_3:7"
    assert evidence.params["seed"] == 0 and evidence.params["weights_sha256"]
    assert len(callbacks) == 1  # the job's message, sent once the claim is committed


def test_the_worker_stores_evidence_with_a_verdict_and_the_claim_page_shows_it(
    author: User, mobilenet: Model, corpus: Path, top_two: list[str]
) -> None:
    claim = post_circuit(author, TARGET, f"f3:7 = {top_two[0]} + {top_two[1]}")
    evidence = run(Evidence.objects.get(revision=claim.current_revision))
    assert evidence.status == Evidence.Status.DONE, evidence.error
    assert evidence.job.status == RenderJob.Status.DONE
    result = evidence.result
    connections = result["connections"]
    assert [c["rank"] for c in connections] == [1, 2]  # the claim names its top two inputs
    # f3 is an inverted residual: the strongest input, all paths, is the target's namesake.
    assert result["skip"] == top_two[0] == "f2:7"
    assert evidence.verdict.startswith(
        result["outcome"].capitalize() + ": f2:7 (claimed excitatory; #1 learned"
    )
    assert "reaches f3:7 through the identity skip" in evidence.verdict
    assert f"removing {top_two[1]} (claimed excitatory; #2 input, top 8.3%)" in evidence.verdict
    ablation = result["ablation"]
    assert ablation["count"] == 6 and result["random_draws"] == 20
    assert ablation["components"][0]["baseline"]["draws"] == 20
    # Six photos, all of them top examples: no other image for a random sample.
    assert result["ablation_random"] is None and evidence.params["random_images"] == []
    assert evidence.params["images_from"] == "corpus"  # the swept files, not stored copies
    # What made it is recorded: the images, the weights and the code.
    assert [image["image"] for image in evidence.params["images"]] == [
        entry["image"] for entry in Artifact.objects.get(
            kind=ArtifactKind.EXAMPLES, neuron=claim.target).data["top"]
    ]  # fmt: skip
    assert evidence.params["weights_sha256"] == mobilenet.weights_sha256
    assert evidence.params["code_version"]

    page = client_for(author).get(claim.get_absolute_url()).content.decode()
    assert 'id="evidence-verdict"' in page and "#1 of 24" in page
    assert 'id="evidence-table"' in page and 'id="evidence-r2"' in page
    assert 'id="evidence-outcome"' in page and result["outcome"] in page


def test_evidence_runs_on_the_top_examples_and_a_random_sample_of_the_corpus(
    author: User, mobilenet: Model, tmp_path: Path, settings: Settings
) -> None:
    photos_corpus(tmp_path / "corpus", settings, 18)  # 16 top examples, 2 others
    claim = post_circuit(author, TARGET, "f3:7 = f2:1 - f2:2")

    evidence = run(Evidence.objects.get(revision=claim.current_revision))

    assert evidence.status == Evidence.Status.DONE, evidence.error
    top = {e["image"] for e in evidence.params["images"]}
    sample = evidence.params["random_images"]
    assert len(top) == 16 and len(sample) == 2 and not top & set(sample)
    random = evidence.result["ablation_random"]
    assert random["images"] == "random sample" and random["count"] == 2
    assert [t["claimed_sign"] for t in random["components"]] == [1, -1]
    assert "On 2 random corpus images" in evidence.verdict


def test_editing_a_circuit_claim_computes_new_evidence_for_the_new_revision(
    author: User, mobilenet: Model, corpus: Path, django_capture_on_commit_callbacks: object
) -> None:
    claim = post_circuit(author, TARGET, "f3:7 = f2:1 + f2:2")
    first = run(Evidence.objects.get(revision=claim.current_revision))
    with django_capture_on_commit_callbacks() as callbacks:
        claim_update(claim=claim, author=author, based_on=1, label="only one",
                     argument="Fewer parts.", expression="f3:7 = f2:1")  # fmt: skip
    claim.refresh_from_db()
    second = Evidence.objects.get(revision=claim.current_revision)
    assert len(callbacks) == 1 and second.pk != first.pk and claim.revision_number == 2
    second = run(second)
    assert second.status == Evidence.Status.DONE
    assert len(second.result["connections"]) == 1 and "removing f2:1" in second.verdict
    first.refresh_from_db()
    assert first.revision.number == 1 and len(first.result["connections"]) == 2  # kept
    # The page shows the current revision's evidence, and an earlier one's on asking.
    client = client_for(author)
    page = client.get(claim.get_absolute_url()).content.decode()
    assert second.verdict in page and 'href="?revision=1#evidence"' in page
    earlier = client.get(claim.get_absolute_url() + "?revision=1").content.decode()
    assert "Evidence from the model for revision 1" in earlier and first.verdict in earlier
    assert 'href="?revision=2#evidence"' in earlier


def test_a_claim_on_a_model_without_weights_has_evidence_unavailable(
    author: User, inceptionv1: Model, django_capture_on_commit_callbacks: object
) -> None:
    with django_capture_on_commit_callbacks() as callbacks:
        claim = post_circuit(author, "inceptionv1/4c:447", "4c:447 = 4b:373 + 4b:237")
    evidence = Evidence.objects.get(revision=claim.current_revision)
    assert evidence.status == Evidence.Status.UNAVAILABLE and evidence.job is None
    assert evidence.error.startswith("weights missing")
    assert callbacks == [] and not RenderJob.objects.exists()
    page = client_for(author).get(claim.get_absolute_url())
    assert page.status_code == 200
    assert "Evidence unavailable: weights missing" in page.content.decode()


def test_a_failure_is_shown_and_can_be_asked_again(
    author: User, mobilenet: Model, settings: Settings, tmp_path: Path
) -> None:
    settings.MICROSCOPE_EXAMPLES_DIR = str(tmp_path / "no-such-folder")
    claim = post_circuit(author, TARGET, "f3:7 = f2:1 + f2:2")
    evidence = run(Evidence.objects.get(revision=claim.current_revision))
    assert evidence.status == Evidence.Status.FAILED
    assert "no dataset examples of f3:7" in evidence.error and "not a folder" in evidence.error
    client = client_for(author)
    page = client.get(claim.get_absolute_url()).content.decode()
    assert "Computing the evidence failed" in page and "Compute again" in page
    response = client.post(f"{claim.get_absolute_url()}evidence/")
    assert response.status_code == 302
    assert Evidence.objects.filter(revision=claim.current_revision).count() == 2
    assert Evidence.objects.filter(revision=claim.current_revision).first().is_active


def test_feature_claims_have_no_evidence(author: User, mobilenet: Model) -> None:
    claim = claim_create(author=author, target=resolve(TARGET), kind="feature", label="edges",
                         argument="Edges.")  # fmt: skip
    assert not Evidence.objects.exists()
    page = client_for(author).get(claim.get_absolute_url()).content.decode()
    assert 'id="evidence"' not in page


def test_the_api_returns_a_claims_evidence(
    author: User, mobilenet: Model, inceptionv1: Model, corpus: Path
) -> None:
    claim = post_circuit(author, TARGET, "f3:7 = f2:1 + f2:2")
    api = APIClient()
    url = f"/api/v1/claims/{claim.pk}/evidence/"
    queued = api.get(url).json()
    assert queued["status"] == "queued" and queued["revision"] == 1
    assert queued["job"].endswith(
        f"/api/v1/render-jobs/{claim.current_revision.evidence.get().job_id}/"
    )
    run(Evidence.objects.get(revision=claim.current_revision))
    body = api.get(url).json()
    assert body["status"] == "done" and "removing f2:1 (claimed excitatory; #" in body["verdict"]
    assert {"outcome", "connections", "ablation", "ablation_random", "sufficiency"} <= set(
        body["result"]
    )
    assert body["params"]["weights_sha256"] == mobilenet.weights_sha256
    assert api.get(f"{url}?revision=1").json()["verdict"] == body["verdict"]
    assert api.get(f"{url}?revision=9").status_code == 404

    unavailable = post_circuit(author, "inceptionv1/4c:447", "4c:447 = 4b:373")
    body = api.get(f"/api/v1/claims/{unavailable.pk}/evidence/").json()
    assert body["status"] == "unavailable" and body["error"].startswith("weights missing")
    feature = claim_create(author=author, target=resolve(TARGET), kind="feature", label="edges",
                           argument="Edges.")  # fmt: skip
    missing = api.get(f"/api/v1/claims/{feature.pk}/evidence/")
    assert missing.status_code == 404 and "feature claim" in missing.json()["error"]["message"]
