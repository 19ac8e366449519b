"""Media on S3-compatible storage, against a real S3 server started here (moto in server
mode, on a free port): a render's images are written there and served from there."""

from __future__ import annotations

import socket
import urllib.request
from collections.abc import Iterator

import pytest
from django.core.files.storage import default_storage

from jobs.models import Artifact
from microscope.env import s3_storages
from neurons.models import Layer
from tests.jobs.conftest import execute, featurevis_job

BUCKET = "microscope-media"


@pytest.fixture
def s3(settings: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    server_module = pytest.importorskip("moto.server", reason='pip install "moto[server]"')
    boto3 = pytest.importorskip("boto3")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = server_module.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    environment = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "MICROSCOPE_S3_BUCKET": BUCKET,
        "MICROSCOPE_S3_ENDPOINT_URL": endpoint,
        "MICROSCOPE_S3_REGION": "us-east-1",
        "MICROSCOPE_S3_SIGNED_URLS": "1",  # a private bucket
    }
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=BUCKET)
    settings.STORAGES = s3_storages()  # as settings.py makes them from that environment
    try:
        yield endpoint
    finally:
        server.stop()


def test_a_renders_images_go_to_s3_and_are_served_from_there(s3: str, layer: Layer) -> None:
    job = featurevis_job(layer, range(2))
    execute(job)
    assert job.status == "done", job.error
    artifacts = list(Artifact.objects.filter(job=job))
    assert len(artifacts) == 2
    for artifact in artifacts:
        [name] = artifact.files
        assert default_storage.exists(name)
        [url] = artifact.urls
        assert url.startswith(f"{s3}/{BUCKET}/") and "Signature" in url
        with urllib.request.urlopen(url, timeout=10) as response:
            assert response.status == 200
            assert response.read(8) == b"\x89PNG\r\n\x1a\n"
