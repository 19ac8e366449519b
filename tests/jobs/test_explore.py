"""Start from an image: upload it (checked by its content), a worker runs it through every
layer, and its page and the API show which channels fire where. Private to its uploader."""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable

import numpy as np
import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.test import Client
from PIL import Image
from pytest_django.fixtures import Settings
from rest_framework.test import APIClient

from jobs import runner
from jobs.models import Exploration, RenderJob, Upload
from jobs.uploads import image_check
from neurons.models import Model
from tests.conftest import REPO

pytestmark = pytest.mark.django_db
PHOTO = REPO / "demo" / "photos" / "0001.jpg"


def encoded(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A valid PNG signature and IHDR claiming width x height, and one tiny IDAT: a
    decompression bomb's shape, a few dozen bytes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0"))


def test_an_upload_is_read_by_its_content_turned_upright_and_stripped(settings: Settings) -> None:
    tall = Image.new("RGB", (40, 20), "red")
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to view
    checked = image_check(encoded(tall, "JPEG", exif=exif.tobytes()))
    assert (checked.width, checked.height) == (20, 40)
    stored = Image.open(io.BytesIO(checked.content))
    assert stored.format == "PNG" and stored.mode == "RGB" and not stored.getexif()
    assert image_check(encoded(tall, "PNG")).sha256 == image_check(encoded(tall, "PNG")).sha256

    def refused(data: bytes) -> str:
        with pytest.raises(ValidationError) as caught:
            image_check(data)
        return caught.value.message_dict["image"][0]

    assert "not an image this site reads (JPEG, PNG or WebP)" in refused(encoded(tall, "GIF"))
    assert "not an image" in refused(b"<svg onload=alert(1)>")
    assert "empty" in refused(b"")
    assert "could not be decoded" in refused(encoded(tall, "PNG")[:60])
    # A bomb is refused from its header: 50,000 x 50,000 pixels in a hundred bytes.
    bomb = png_header_only(50_000, 50_000)
    assert len(bomb) < 100 and "too many pixels; the limit is 40,000,000" in refused(bomb)
    below_pillows_own_check = png_header_only(8_000, 8_000)
    assert "64,000,000 pixels; the limit is 40,000,000" in refused(below_pillows_own_check)
    # A thin one, under the pixel limit: Pillow keeps bytes per row (1.2 GB for 1 x 39M).
    thin = png_header_only(1, 39_000_000)
    assert "1x39000000: a side is at most 16,384 pixels" in refused(thin)
    # A 16-bit grey PNG, scaled to 8 bits (Pillow's conversion clipped it at 255: white).
    ramp = np.arange(0, 65536, 256, dtype=np.uint16).reshape(16, 16)
    stored = Image.open(io.BytesIO(image_check(encoded(Image.fromarray(ramp), "PNG")).content))
    expected = np.round(ramp / 65535 * 255).astype(np.uint8)
    assert np.array_equal(np.asarray(stored)[..., 0], expected)
    settings.MICROSCOPE_UPLOAD_MAX_BYTES = 100
    assert "the limit is 100" in refused(encoded(Image.new("RGB", (64, 64)), "BMP"))


def run(exploration: Exploration) -> Exploration:
    assert exploration.job is not None
    runner.render_job_execute(job_id=exploration.job.pk)
    return Exploration.objects.select_related("job", "upload").get(pk=exploration.pk)


@pytest.fixture
def ada(client: Client, django_user_model: type[User]) -> Client:
    client.force_login(django_user_model.objects.create_user("ada", password="pw"))
    return client


def test_an_uploaded_photo_shows_which_neurons_fire_where(
    ada: Client, mobilenet: Model, django_capture_on_commit_callbacks: Callable
) -> None:
    with django_capture_on_commit_callbacks(execute=False):
        with PHOTO.open("rb") as photo:
            response = ada.post("/explore/", {"model": "mobilenet_v2", "image": photo})
    assert response.status_code == 302
    exploration = Exploration.objects.get()
    assert response["Location"] == f"/explore/{exploration.pk}/"
    waiting = ada.get(response["Location"]).content.decode()
    assert 'id="exploration-job"' in waiting and "queued" in waiting
    exploration = run(exploration)
    assert exploration.status == "done", exploration.job.error
    layers = exploration.result["layers"]
    assert [layer["alias"] for layer in layers] == [f"f{i}" for i in range(19)]
    assert all(len(layer["channels"]) == 8 for layer in layers)
    peaks = [c["peak"] for c in layers[10]["channels"]]
    assert peaks == sorted(peaks, reverse=True)
    page = ada.get(exploration.get_absolute_url()).content.decode()
    assert page.count('class="panel explore-layer"') == 19
    top = layers[10]["channels"][0]
    assert f'href="/models/mobilenet_v2/features_10/{top["channel"]}/"' in page
    assert 'src="data:image/png;base64,' in page and exploration.upload.url in page

    # The same photo again: the same exploration, no new job.
    with PHOTO.open("rb") as photo:
        ada.post("/explore/", {"model": "mobilenet_v2", "image": photo})
    assert Exploration.objects.count() == 1 and RenderJob.objects.count() == 1
    # Picked from the corpus, it is the same picture too.
    ada.post("/explore/", {"model": "mobilenet_v2", "corpus_image": "0001.jpg"})
    assert Upload.objects.count() == 1


def test_another_researcher_s_same_photo_reuses_the_result_and_stays_private(
    ada: Client,
    mobilenet: Model,
    bob: User,
    client_for: Callable[[User], APIClient],
    django_capture_on_commit_callbacks: Callable,
) -> None:
    with django_capture_on_commit_callbacks(execute=False):
        ada.post("/explore/", {"model": "mobilenet_v2", "corpus_image": "0002.jpg"})
    first = run(Exploration.objects.get())
    api = client_for(bob)
    with django_capture_on_commit_callbacks(execute=False):
        response = api.post(
            "/api/v1/explorations/", {"model": "mobilenet_v2", "corpus_image": "0002.jpg"}
        )
    assert response.status_code == 202 and response.json()["status"] == "queued"
    second = run(Exploration.objects.get(pk=response.json()["id"]))
    assert second.key == first.key and second.result == first.result
    body = api.get(response.json()["api_url"]).json()
    assert body["status"] == "done" and len(body["layers"]) == 19
    fired = body["layers"][10]["channels"][0]
    assert fired["ref"].startswith("mobilenet_v2/f10:") and fired["heatmap"].startswith("data:")
    assert fired["api_url"].startswith("http://testserver/api/v1/neurons/mobilenet_v2/")
    # Each sees their own only.
    assert api.get(f"/api/v1/explorations/{first.pk}/").status_code == 404
    assert ada.get(f"/explore/{second.pk}/").status_code == 404
    assert [e["id"] for e in api.get("/api/v1/explorations/").json()] == [second.pk]
    assert APIClient().get(f"/api/v1/explorations/{first.pk}/").status_code in (401, 403)
    # Their jobs too: who explored what, and when, is theirs (and staff's) to see.
    hers, his = first.job.pk, second.job.pk
    assert [j["id"] for j in api.get("/api/v1/render-jobs/").json()["results"]] == [his]
    assert api.get(f"/api/v1/render-jobs/{hers}/").status_code == 404
    assert APIClient().get("/api/v1/render-jobs/").json()["results"] == []
    anyone = Client()
    assert anyone.get(f"/jobs/{his}/status/").status_code == 404
    assert anyone.get("/jobs/status/", {"id": [hers, his]}).json() == {"jobs": []}
    assert f'data-job-id="{hers}"' not in anyone.get("/jobs/").content.decode()
    assert f'data-job-id="{hers}"' in ada.get("/jobs/").content.decode()
    assert ada.get("/jobs/status/", {"id": [hers, his]}).json()["jobs"][0]["id"] == hers
    # Nor does a neuron's page or API item list them: an exploration renders no neuron.
    neuron_page = anyone.get("/models/mobilenet_v2/features_10/0/").content.decode()
    assert "data-job-id=" not in neuron_page
    assert APIClient().get("/api/v1/neurons/mobilenet_v2/features_10/0/").json()["jobs"] == []
    curator = Client()
    curator.force_login(User.objects.create_user("curator", is_staff=True))
    assert len(curator.get("/jobs/status/", {"id": [hers, his]}).json()["jobs"]) == 2


def test_bad_input_is_a_400_naming_the_field_and_stores_nothing(
    ada: Client, mobilenet: Model, inceptionv1: Model, bob: User, client_for: Callable
) -> None:
    api = client_for(bob)
    bad = {
        "not an image": (
            {"model": "mobilenet_v2", "image": io.BytesIO(b"GIF89a nonsense")},
            "image",
        ),
        "no model": ({"model": "nomodel", "corpus_image": "0001.jpg"}, "model"),
        "no weights": ({"model": "inceptionv1", "corpus_image": "0001.jpg"}, "model"),
        "a path": ({"model": "mobilenet_v2", "corpus_image": "../../etc/passwd"}, "corpus_image"),
        "nothing": ({"model": "mobilenet_v2"}, "image"),
    }
    for name, (data, field) in bad.items():
        if "image" in data:
            data["image"].name = "x.gif"
            data["image"].seek(0)
        response = api.post("/api/v1/explorations/", data, format="multipart")
        assert response.status_code == 400, (name, response.content)
        assert field in response.json()["error"]["fields"], (name, response.json())
    photo = PHOTO.read_bytes()
    both = {"model": "mobilenet_v2", "corpus_image": "0001.jpg", "image": io.BytesIO(photo)}
    both["image"].name = "mine.jpg"
    said = api.post("/api/v1/explorations/", both, format="multipart").json()["error"]
    assert said["fields"]["image"] == ["send an image or name one of the corpus, not both"]
    page = ada.post("/explore/", {"model": "mobilenet_v2", "corpus_image": "../secret"})
    assert page.status_code == 400 and b"is not an image of the corpus" in page.content
    # Two files for one field: which one was meant is not a guess (the page took the last).
    two = [io.BytesIO(b"junk"), io.BytesIO(photo)]
    for n, part in enumerate(two):
        part.name = f"{n}.jpg"
    page = ada.post("/explore/", {"model": "mobilenet_v2", "image": two})
    assert page.status_code == 400 and b"image: given 2 times; give it once" in page.content
    assert not Upload.objects.exists() and not Exploration.objects.exists()
    assert not RenderJob.objects.exists()


def test_an_uploader_deletes_their_image_and_its_explorations(
    ada: Client, mobilenet: Model, bob: User, django_capture_on_commit_callbacks: Callable
) -> None:
    with django_capture_on_commit_callbacks(execute=False):  # its job is never sent
        ada.post("/explore/", {"model": "mobilenet_v2", "corpus_image": "0003.jpg"})
    upload = Upload.objects.get()
    assert default_storage.exists(upload.file)
    other = Client()
    other.force_login(bob)
    assert other.post(f"/explore/uploads/{upload.pk}/delete/").status_code == 404
    with django_capture_on_commit_callbacks(execute=True):
        response = ada.post(f"/explore/uploads/{upload.pk}/delete/")
    assert response.status_code == 302
    assert not Upload.objects.exists() and not Exploration.objects.exists()
    assert not default_storage.exists(upload.file)
    job = RenderJob.objects.get()  # it had nothing left to explore: not left "queued"
    assert job.status == RenderJob.Status.CANCELLED and "cancelled by" in job.error


def uploaded_by_both(
    ada: Client, bob: User, photo: str, capture_on_commit: Callable
) -> tuple[Upload, Upload]:
    """Ada's upload of a corpus photo, then Bob's of the same one (their jobs never sent)."""
    other = Client()
    other.force_login(bob)
    with capture_on_commit(execute=False):
        for client in (ada, other):
            client.post("/explore/", {"model": "mobilenet_v2", "corpus_image": photo})
    hers, his = Upload.objects.order_by("pk")
    return hers, his


def test_a_deleted_account_takes_its_uploaded_files_with_it(
    ada: Client, mobilenet: Model, bob: User, django_capture_on_commit_callbacks: Callable
) -> None:
    hers, his = uploaded_by_both(ada, bob, "0003.jpg", django_capture_on_commit_callbacks)

    with django_capture_on_commit_callbacks(execute=True):
        User.objects.get(username="ada").delete()  # as an admin deletes an account

    assert list(Upload.objects.all()) == [his]
    assert not default_storage.exists(hers.file) and default_storage.exists(his.file)


def test_a_storage_error_on_one_file_still_deletes_the_others(
    ada: Client,
    mobilenet: Model,
    django_capture_on_commit_callbacks: Callable,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with django_capture_on_commit_callbacks(execute=False):
        for photo in ("0003.jpg", "0004.jpg"):
            ada.post("/explore/", {"model": "mobilenet_v2", "corpus_image": photo})
    first, second = Upload.objects.order_by("pk")
    delete = default_storage.delete

    def flaky(name: str) -> None:  # the object store fails on one file
        if name == first.file:
            raise OSError("503 Slow Down")
        delete(name)

    monkeypatch.setattr(default_storage, "delete", flaky)
    with django_capture_on_commit_callbacks(execute=True):
        User.objects.get(username="ada").delete()

    assert not Upload.objects.exists()
    assert default_storage.exists(first.file) and not default_storage.exists(second.file)


def test_a_phone_s_jpeg_is_read_and_an_oversized_one_refused_before_it_is_read(
    ada: Client, mobilenet: Model, settings: Settings, django_capture_on_commit_callbacks: Callable
) -> None:
    first, second = Image.new("RGB", (32, 24), "blue"), Image.new("RGB", (32, 24), "red")
    mpo = encoded(first, "MPO", save_all=True, append_images=[second])
    assert Image.open(io.BytesIO(mpo)).format == "MPO"  # what cameras write as .jpg
    assert image_check(mpo).width == 32
    settings.MICROSCOPE_UPLOAD_MAX_BYTES = 1000
    big = io.BytesIO(b"\xff" * 5000)
    big.name = "big.jpg"
    with django_capture_on_commit_callbacks(execute=False):
        response = ada.post("/explore/", {"model": "mobilenet_v2", "image": big})
    assert response.status_code == 400 and b"the file is 5,000 bytes; the limit is 1,000" in (
        response.content
    )
    assert not Upload.objects.exists()


def test_two_researchers_same_photo_have_their_own_files(
    ada: Client, mobilenet: Model, bob: User, django_capture_on_commit_callbacks: Callable
) -> None:
    mine, theirs = uploaded_by_both(ada, bob, "0005.jpg", django_capture_on_commit_callbacks)
    assert mine.sha256 == theirs.sha256 and mine.file != theirs.file  # unguessable, each own
    with django_capture_on_commit_callbacks(execute=True):
        ada.post(f"/explore/uploads/{mine.pk}/delete/")
    assert not default_storage.exists(mine.file) and default_storage.exists(theirs.file)


def test_a_researcher_has_a_few_explorations_running_at_most(
    ada: Client, mobilenet: Model, django_capture_on_commit_callbacks: Callable
) -> None:
    with django_capture_on_commit_callbacks(execute=False):
        for number in range(1, 6):
            ada.post("/explore/", {"model": "mobilenet_v2", "corpus_image": f"00{number:02d}.jpg"})
        refused = ada.post("/explore/", {"model": "mobilenet_v2", "corpus_image": "0006.jpg"})
    assert refused.status_code == 400 and b"5 of your explorations are still running" in (
        refused.content
    )
    assert Upload.objects.count() == 5 and Exploration.objects.count() == 5  # nothing stored
