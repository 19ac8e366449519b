"""The README's example script, run as another lab would: a separate process, plain HTTP
(requests) against a running server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from django.contrib.auth.models import User
from pytest_django.live_server_helper import LiveServer

from annotations.services import claim_create
from api.services import api_token_create
from neurons.models import Model
from neurons.references import resolve
from tests.conftest import REPO

SCRIPT = REPO / "examples" / "api_example.py"


def test_the_readme_example_runs_against_a_live_server(
    live_server: LiveServer, inceptionv1: Model, tmp_path: Path
) -> None:
    colleague = User.objects.create_user("bob")
    claim_create(
        author=colleague,
        target=resolve("inceptionv1/4c:447"),
        kind="feature",
        label="car detector",
        argument="Fires on cars.",
    )
    _, key = api_token_create(user=User.objects.create_user("alice"), name="lab script")

    env = {**os.environ, "MICROSCOPE_URL": live_server.url, "MICROSCOPE_TOKEN": key}
    run = subprocess.run(
        [sys.executable, str(SCRIPT)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "('mixed4c', '4c', 512)" in run.stdout
    assert "now at revision 2" in run.stdout
    assert "reviewed claim" in run.stdout and "support" in run.stdout
    export = json.loads((tmp_path / "inceptionv1-claims.json").read_text())
    assert [c["author"] for c in export["claims"]] == ["bob", "alice"]
    assert export["claims"][0]["reviews"][0]["reviewer"] == "alice"
