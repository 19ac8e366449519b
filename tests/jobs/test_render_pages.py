"""What pages show of renders, and the button that asks for what is missing. No torch here."""

from __future__ import annotations

import io

import pytest
from django.test import Client
from PIL import Image

from jobs import lifecycle, planning, storage
from jobs.models import Artifact, ArtifactKind, RenderJob
from neurons.models import Layer, Model, Neuron


def png(size: int = 8) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), "orange").save(buffer, format="PNG")
    return buffer.getvalue()


def stored(neuron: Neuron, kind: str, images: int = 1, data: dict | None = None) -> Artifact:
    identity = {"kind": kind, "layer": neuron.layer.name, "channel": neuron.index, "steps": 64}
    return storage.artifact_create(
        kind=kind, neuron=neuron, identity=identity, images=[png()] * images, data=data
    )


def examples_data() -> dict:
    entry = {"image": "0021.jpg", "value": 2.5, "pos": [3, 4], "box": [96, 64, 160, 128]}
    files = {"file": storage.example_image_save(name="examples/aa/aa-224.jpg", content=png())}
    low = {**entry, **files, "value": -1.25, "pos": [0, 0], "box": [0, 0, 56, 56]}
    return {
        "images": 64,
        "grid": [7, 7],
        "input_size": 224,
        "corpus": "demo/photos",
        "top": [{**entry, **files}],
        "bottom": [low],
        "histogram": {"edges": [-2.0, -1.0, 0.0, 1.0, 2.0, 3.0], "counts": [1, 3, 40, 5, 0]},
    }


@pytest.fixture
def neuron(mobilenet: Model) -> Neuron:
    return Neuron.objects.select_related("layer__model").get(
        layer__model=mobilenet, layer__name="features_16", index=5
    )


@pytest.fixture
def member(client: Client, django_user_model) -> Client:
    client.force_login(django_user_model.objects.create_user("ada", password="pw"))
    return client


def test_a_neuron_page_shows_its_visualizations_examples_and_histogram(
    client: Client, neuron: Neuron
) -> None:
    featurevis = stored(neuron, ArtifactKind.FEATUREVIS)
    negative = stored(neuron, ArtifactKind.FEATUREVIS_NEGATIVE)
    diversity = stored(neuron, ArtifactKind.FEATUREVIS_DIVERSITY, images=4)
    stored(neuron, ArtifactKind.EXAMPLES, images=0, data=examples_data())
    content = client.get(neuron.get_absolute_url()).content.decode()
    for url in featurevis.urls + negative.urls + diversity.urls:
        assert f'src="{url}"' in content
    assert 'id="top-examples"' in content and 'id="bottom-examples"' in content
    assert 'src="/media/examples/aa/aa-224.jpg"' in content
    # The box over the image marks the max position: 96/224 of the way across, and so on.
    assert '<rect class="peak" x="42.86" y="28.57" width="28.57" height="28.57">' in content
    # Five histogram bars besides the two boxes (top and bottom example).
    assert content.count('<rect class="peak"') == 2
    assert content.count("<rect ") - 2 == 5 and "-2 to -1: 1" in content
    assert "Render what is missing" not in content  # nothing is


def test_a_neuron_page_offers_to_render_what_is_missing_to_members(
    client: Client, member: Client, neuron: Neuron
) -> None:
    stored(neuron, ArtifactKind.FEATUREVIS)
    content = member.get(neuron.get_absolute_url()).content.decode()
    assert "No visualizations yet" not in content
    assert "Render what is missing" in content and 'name="csrfmiddlewaretoken"' in content
    assert "negative feature visualization, diverse feature visualizations, dataset examples" in (
        content
    )
    client.logout()
    anonymous = client.get(neuron.get_absolute_url()).content.decode()
    assert "Render what is missing" not in anonymous and "Sign in</a> to render" in anonymous


def test_the_button_queues_what_is_missing_once_and_shows_the_jobs_status(
    member: Client, neuron: Neuron, django_capture_on_commit_callbacks
) -> None:
    url = f"{neuron.get_absolute_url()}render/"
    with django_capture_on_commit_callbacks() as callbacks:
        response = member.post(url)
    assert response.status_code == 302 and response.url == neuron.get_absolute_url()
    jobs = RenderJob.objects.order_by("kind", "layer__position")
    assert [job.kind for job in jobs] == [
        "examples", "featurevis", "featurevis_diversity", "featurevis_negative",
        "weights", "weights",
    ]  # fmt: skip
    assert len(callbacks) == 6
    # Connecting weights: its layer's from below (inputs), the layer above's (outputs).
    assert [job.layer.name for job in jobs.filter(kind=ArtifactKind.WEIGHTS)] == [
        "features_16", "features_17",
    ]  # fmt: skip
    featurevis = jobs.get(kind=ArtifactKind.FEATUREVIS)
    assert (featurevis.channel_start, featurevis.channel_stop) == (5, 6)
    assert jobs.get(kind=ArtifactKind.EXAMPLES).layer == neuron.layer  # the whole layer, one sweep

    member.post(url)  # asked again while queued: the same jobs
    assert RenderJob.objects.count() == 6

    page = member.get(neuron.get_absolute_url()).content.decode()
    assert f'data-job-id="{featurevis.pk}"' in page  # followed by the page's poll
    assert "Render what is missing" not in page  # jobs are on their way
    status = member.get(f"/jobs/{featurevis.pk}/status/").json()
    assert status["status"] == "queued" and status["target"] == "mobilenet_v2/features_16:5"


def test_the_button_says_why_a_model_without_weights_cannot_render(
    member: Client, inceptionv1: Model
) -> None:
    page = member.get("/models/inceptionv1/mixed4c/447/").content.decode()
    assert "Render what is missing" not in page
    assert "weights missing for inceptionv1" in page
    response = member.post("/models/inceptionv1/mixed4c/447/render/")
    assert response.status_code == 400
    assert b"weights missing for inceptionv1" in response.content
    assert not RenderJob.objects.exists()


def test_a_failed_job_shows_its_reason_on_the_page(client: Client, neuron: Neuron) -> None:
    job = planning.render_job_create(
        model=neuron.layer.model, layer=neuron.layer, kind=ArtifactKind.FEATUREVIS, params={},
        channels=range(5, 6), enqueue=False,
    )  # fmt: skip
    lifecycle.render_job_finish(job_id=job.pk, error="weights missing on worker gpu-7")
    content = client.get(neuron.get_absolute_url()).content.decode()
    assert "weights missing on worker gpu-7" in content


def test_an_unknown_job_status_is_a_404(client: Client, db: None) -> None:
    assert client.get("/jobs/999/status/").status_code == 404


def test_a_layer_page_shows_every_feature_visualization_in_a_few_queries(
    client: Client, mobilenet: Model, django_assert_max_num_queries
) -> None:
    layer: Layer = mobilenet.layers.get(name="features_16")
    neurons = list(layer.neurons.select_related("layer__model")[:6])
    artifacts = [stored(n, ArtifactKind.FEATUREVIS) for n in neurons]
    with django_assert_max_num_queries(8):
        content = client.get(layer.get_absolute_url()).content.decode()
    for artifact in artifacts:
        assert f'<img src="{artifact.urls[0]}"' in content
    assert content.count('<span class="blank">') == layer.channels - 6


def test_the_job_list_shows_recent_jobs(client: Client, neuron: Neuron) -> None:
    planning.render_job_create(
        model=neuron.layer.model, layer=None, kind=ArtifactKind.EXAMPLES, params={}, enqueue=False
    )
    content = client.get("/jobs/").content.decode()
    assert "dataset examples" in content and "mobilenet_v2" in content


def test_an_example_is_shown_as_its_receptive_field_and_links_to_the_whole_image(
    client: Client, neuron: Neuron
) -> None:
    data = examples_data()
    data["top"][0]["field"] = [101.0, 69.0, 155.0, 123.0]  # 54 px, inside the 64 px box
    data["bottom"][0]["image"] = data["top"][0]["image"]  # the same photo at both ends
    stored(neuron, ArtifactKind.EXAMPLES, images=0, data=data)

    content = client.get(neuron.get_absolute_url()).content.decode()

    # The crop is the box, as an SVG viewBox over the whole image; the field is outlined.
    assert '<svg class="crop" viewBox="96 64 64 64"' in content
    assert '<image href="/media/examples/aa/aa-224.jpg" width="224" height="224">' in content
    assert '<rect class="peak" x="101.00" y="69.00" width="54.00" height="54.00">' in content
    assert '<a class="frame" href="/media/examples/aa/aa-224.jpg"' in content  # the whole
    assert content.count("top and bottom</span>") == 2


def test_a_layer_grid_shows_the_best_picture_of_each_channel_and_never_a_bare_tile(
    client: Client, mobilenet: Model, django_assert_max_num_queries
) -> None:
    layer: Layer = mobilenet.layers.get(name="features_16")
    n0, n1 = layer.neurons.select_related("layer__model").order_by("index")[:2]
    visualized = stored(n0, ArtifactKind.FEATUREVIS)
    crop = storage.example_image_save(name="examples/bb/bb-224-0-0-64-64.jpg", content=png())
    examples = storage.artifact_create(
        kind=ArtifactKind.EXAMPLES,
        neuron=n1,
        identity={"kind": "examples", "channel": 1},
        data=examples_data(),
    )
    Artifact.objects.filter(pk=examples.pk).update(files=[crop])
    stored(n0, ArtifactKind.EXAMPLES, data=examples_data())  # n0's own picture wins
    planning.render_job_create(
        model=mobilenet, layer=layer, kind=ArtifactKind.FEATUREVIS, params={},
        channels=range(2, 40), enqueue=False,
    )  # fmt: skip
    with django_assert_max_num_queries(9):
        content = client.get(layer.get_absolute_url()).content.decode()
    assert f'<img src="{visualized.urls[0]}" alt="f16:0, feature visualization"' in content
    assert f'<img src="/media/{crop}" alt="f16:1, top dataset example' in content
    assert content.count("<small>example</small>") == 1
    # Without a picture, each says so, with the state of the job that would make one.
    assert content.count('<span class="blank">not rendered yet<em>queued</em></span>') == 38
    assert content.count('<span class="blank">not rendered yet</span>') == layer.channels - 40
    # A render that never left its grey start is no picture: the example is shown instead.
    flat = storage.artifact_create(
        kind=ArtifactKind.FEATUREVIS, neuron=n1, identity={"kind": "featurevis", "flat": 1},
        images=[png()], data={"flat": True},
    )  # fmt: skip
    content = client.get(layer.get_absolute_url()).content.decode()
    assert f'<img src="/media/{crop}" alt="f16:1, top dataset example' in content
    assert flat.urls[0] not in content
    page = client.get(n1.get_absolute_url()).content.decode()
    assert 'id="featurevis-flat"' in page and flat.urls[0] in page  # said so on its page
    # An examples artifact swept before crops were stored shows its top image whole.
    Artifact.objects.filter(pk=examples.pk).update(files=[])
    content = client.get(layer.get_absolute_url()).content.decode()
    assert '<img src="/media/examples/aa/aa-224.jpg" alt="f16:1, top dataset example' in content


def test_a_large_layer_is_paged(client: Client, mobilenet: Model) -> None:
    layer: Layer = mobilenet.layers.get(name="features_18")
    assert layer.channels == 1280
    first = client.get(layer.get_absolute_url()).content.decode()
    assert first.count('<span class="blank">') == 256
    assert 'href="/models/mobilenet_v2/features_18/255/"' in first
    assert 'href="/models/mobilenet_v2/features_18/256/"' not in first
    assert '<a href="?page=5">5</a>' in first and 'rel="next"' in first
    last = client.get(layer.get_absolute_url() + "?page=5").content.decode()
    assert 'href="/models/mobilenet_v2/features_18/1279/"' in last
    assert "Channels 1024 to 1279." in last and 'rel="next"' not in last
    for page in ("99", "abc", "-1", "1e9"):  # out of range or not a number: said, not guessed
        response = client.get(layer.get_absolute_url(), {"page": page})
        assert response.status_code == 400 and b"is not a page here (1 to 5)" in response.content


def test_a_neuron_page_has_a_tab_per_objective_and_asks_for_a_missing_one(
    client: Client, member: Client, neuron: Neuron, django_capture_on_commit_callbacks
) -> None:
    featurevis = stored(neuron, ArtifactKind.FEATUREVIS)
    negative = stored(neuron, ArtifactKind.FEATUREVIS_NEGATIVE)
    page = member.get(neuron.get_absolute_url()).content.decode()
    for objective in ("channel", "neuron", "negative", "diversity"):
        assert f'id="tab-{objective}"' in page and f'id="panel-{objective}"' in page
    assert (
        'href="?objective=channel#tab-channel" aria-controls="panel-channel" aria-selected="true"'
        in (page)
    )
    assert 'id="panel-channel" aria-labelledby="tab-channel">' in page  # shown
    assert 'id="panel-negative" aria-labelledby="tab-negative" hidden>' in page
    assert f'src="{negative.urls[0]}"' in page  # in its panel, a click away
    assert page.count("<small>not rendered</small>") == 2  # neuron and diversity
    assert 'name="kind" value="featurevis_neuron"' in page
    assert "Render the centre neuron objective" in page

    chosen = member.get(neuron.get_absolute_url(), {"objective": "negative"}).content.decode()
    assert 'id="panel-negative" aria-labelledby="tab-negative">' in chosen
    assert 'id="panel-channel" aria-labelledby="tab-channel" hidden>' in chosen
    assert f'src="{featurevis.urls[0]}"' in chosen
    odd = member.get(neuron.get_absolute_url(), {"objective": "<b>"})
    assert odd.status_code == 400
    assert b"objective: &#x27;&lt;b&gt;&#x27; is not one of channel, neuron" in odd.content
    assert b"<b>" not in odd.content

    url = f"{neuron.get_absolute_url()}render/"
    with django_capture_on_commit_callbacks():
        response = member.post(url, {"kind": "featurevis_neuron"})
    assert response.status_code == 302
    assert response.url == f"{neuron.get_absolute_url()}?objective=neuron"
    [job] = RenderJob.objects.all()
    assert job.kind == "featurevis_neuron" and (job.channel_start, job.channel_stop) == (5, 6)
    assert job.requested_by.get_username() == "ada"
    page = member.get(response.url).content.decode()
    assert "Centre neuron objective: not rendered yet (its job is queued)." in page
    assert "Render the centre neuron objective" not in page

    refused = member.post(url, {"kind": "weights<script>"})
    assert refused.status_code == 400 and b"is not one of featurevis" in refused.content
    assert b"<script>" not in refused.content
    assert RenderJob.objects.count() == 1
    client.logout()
    anonymous = client.get(neuron.get_absolute_url()).content.decode()
    assert "Render the centre neuron objective" not in anonymous and "to render it." in anonymous


def jobs_of(neuron: Neuron, count: int) -> list[RenderJob]:
    return [
        planning.render_job_create(
            model=neuron.layer.model,
            layer=neuron.layer,
            kind=ArtifactKind.FEATUREVIS,
            params={"steps": 64 + i},
            channels=range(5, 6),
            enqueue=False,
        )
        for i in range(count)
    ]


def test_one_request_gives_the_status_of_every_job_a_page_follows(
    client: Client, neuron: Neuron, django_assert_max_num_queries
) -> None:
    first, second = jobs_of(neuron, 2)
    RenderJob.objects.filter(pk=second.pk).update(
        status=RenderJob.Status.RUNNING, progress_total=1, progress_note="step 3 of 64"
    )

    with django_assert_max_num_queries(1):
        response = client.get(f"/jobs/status/?id={first.pk}&id={second.pk}&id=999999")

    assert response.status_code == 200
    statuses = {job["id"]: job for job in response.json()["jobs"]}
    assert set(statuses) == {first.pk, second.pk}  # an unknown id is left out
    assert statuses[first.pk] == first.as_status()
    assert statuses[second.pk]["note"] == "step 3 of 64"


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("", "give 1 to 100 job ids"),
        ("&".join(f"id={i}" for i in range(1, 102)), "give 1 to 100 job ids"),
        ("id=abc", "'abc' is not a job id"),
        ("id=1_0", "'1_0' is not a job id"),
        ("id=%201", "' 1' is not a job id"),
        ("id=-1", "'-1' is not a job id"),
        ("id=%D9%A1", "'\u0661' is not a job id"),  # Arabic-Indic one: isdigit() says yes
        ("id=" + "9" * 19, "is not a job id"),  # no bigint holds it
    ],
)
def test_a_status_request_with_bad_ids_is_a_400_naming_the_field(
    client: Client, db: None, query: str, message: str
) -> None:
    response = client.get(f"/jobs/status/?{query}")
    assert response.status_code == 400
    assert message in response.json()["id"][0]


def test_the_job_list_pages_its_jobs_newest_first(
    client: Client, neuron: Neuron, monkeypatch: pytest.MonkeyPatch
) -> None:
    from jobs import views

    monkeypatch.setattr(views, "JOBS_PAGE", 3)
    jobs = jobs_of(neuron, 4)

    first = client.get("/jobs/").content.decode()
    second = client.get("/jobs/?page=2").content.decode()

    assert "4 jobs, newest first" in first and "page 1 of 2" in first
    assert all(f'id="job-{job.pk}"' in first for job in jobs[1:])
    assert f'id="job-{jobs[0].pk}"' not in first and f'id="job-{jobs[0].pk}"' in second
    for wrong in ("99", "abc", "0", "-1", "1.0", "\u0665", ""):  # none is read as another page
        refused = client.get("/jobs/", {"page": wrong})
        assert (
            refused.status_code == 400 and "is not a page here (1 to 2)" in refused.content.decode()
        )
    assert first.count(f'data-job-id="{jobs[3].pk}"') == 1
