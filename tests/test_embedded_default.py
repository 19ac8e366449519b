"""The newcomer's path: a fresh SQLite file and the filesystem broker, no server at all."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.conftest import REPO


def manage(*args: str, env: dict[str, str]) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def site_python(code: str, *, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh Python process of the site, as a web process would be."""
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env={**env, "DJANGO_SETTINGS_MODULE": "microscope.settings"},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_catalog_works_on_a_fresh_sqlite_file_and_its_pages_never_import_torch_celery_or_drf(
    tmp_path: Path,
) -> None:
    unset = ("DATABASE_URL", "CELERY_BROKER_URL", "DJANGO_DEBUG", "DJANGO_SECRET_KEY")
    env = {k: v for k, v in os.environ.items() if k not in unset}
    env["MICROSCOPE_VAR_DIR"] = str(tmp_path / "var")
    manage("migrate", "--no-input", env=env)
    manage("add_model", "inceptionv1", env=env)
    output = manage("add_model", "inceptionv1", env=env)
    assert "12 layers, 5804 neurons (0 layers and 0 neurons new)" in output
    assert (tmp_path / "var" / "db.sqlite3").exists()
    assert (tmp_path / "var" / "broker" / "queue").is_dir()
    # The same site as a web process loads it: settings, the pages' URLs, the admin, and the
    # pages of a model, a layer, a neuron, the claims; then the API.
    pages = [
        "/models/",
        "/models/inceptionv1/",
        "/models/inceptionv1/mixed4c/",
        "/models/inceptionv1/mixed4c/447/",
        "/claims/",
        "/jobs/",
        "/admin/login/",
        "/static/microscope/site.css",  # served without DEBUG
    ]
    api = [
        "/api/v1/models/inceptionv1/",
        "/api/v1/neurons/inceptionv1/mixed4c/447/",
        "/api/v1/claims/",
    ]
    code = (
        "import gc, sys; import microscope.wsgi;"  # as gunicorn loads it
        "loaded = 'annotations.views' in sys.modules and 'api.views' in sys.modules;"
        "startup = (gc.isenabled(), gc.get_freeze_count() > 10_000, loaded);"
        "from django.test import Client; c = Client();"
        "r = c.get('/n/inceptionv1/4c:447', follow=True);"
        f"codes = [c.get(p).status_code for p in {pages!r}];"
        "big = c.post('/claims/new/', b'x' * 3_000_000, content_type='text/plain');"
        "codes.append(big.status_code);"  # refused unread, without loading the API's URLconf
        "drf = 'rest_framework.fields' in sys.modules;"
        f"codes += [c.get(p).status_code for p in {api!r}];"
        "from django.conf import settings; missing = c.get('/no/such/page/');"
        "technical = 'URLconf' in missing.content.decode();"
        "print(r.status_code, r.redirect_chain[-1][0], *codes, 'torch' in sys.modules,"
        " 'celery' in sys.modules, drf,"
        " settings.DEBUG, missing.status_code, technical, *startup)"
    )
    result = site_python(code, env=env)
    # Neither torch nor Celery: pages send no job, and Celery loads with the first one sent.
    # Nor DRF: it loads with the first API request (microscope.middleware.pages_urlconf).
    expected = ["200", "/models/inceptionv1/mixed4c/447/", *["200"] * len(pages), "413"]
    expected += ["200"] * len(api)
    expected += ["False", "False", "False"]
    expected += ["False", "404", "False"]  # safe by default: no DEBUG, no technical 404
    # The URLconf loaded with the application, with the collector off; what startup made is
    # frozen out of its reach, and it collects again.
    expected += ["True", "True", "True"]
    assert result.stdout.split() == expected, result.stderr

    # The site and its worker write to the one file at once: transactions that read and then
    # write wait for each other (IMMEDIATE) instead of failing with "database is locked".
    writers = textwrap.dedent(
        """
        import threading, django
        django.setup()
        from django.contrib.auth.models import User
        from django.db import connection, transaction
        start, failed = threading.Barrier(8), []
        def write(i):
            start.wait()
            try:
                with transaction.atomic():
                    User.objects.count()
                    User.objects.create_user(f"writer{i}")
            except Exception as error:
                failed.append(repr(error))
            finally:
                connection.close()
        threads = [threading.Thread(target=write, args=(i,)) for i in range(8)]
        [t.start() for t in threads]
        [t.join() for t in threads]
        print(len(failed), User.objects.filter(username__startswith="writer").count(), *failed)
        """
    )
    result = site_python(writers, env=env)
    assert result.stdout.split() == ["0", "8"], result.stdout + result.stderr

    # Another's long write (a big import holds the one write lock for a minute): a read with
    # a token goes on without noting the token's use, and a write, once its wait is over, is
    # a 503 with Retry-After, not a 500. (The wait is cut to 1 s here, from 20.)
    busy = textwrap.dedent(
        """
        import json, sqlite3, django
        django.setup()
        from django.conf import settings
        from django.contrib.auth.models import User
        from rest_framework.test import APIClient
        from api.models import ApiToken
        from api.services import api_token_create
        _, key = api_token_create(user=User.objects.create_user("busy"), name="script")
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
        other = sqlite3.connect(settings.DATABASES["default"]["NAME"], isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        read = client.get("/api/v1/me/")
        claim = {"kind": "feature", "target": "inceptionv1/4c:447", "label": "cars",
                 "argument": "Wheels."}
        write = client.post("/api/v1/claims/", claim, format="json")
        other.execute("ROLLBACK")
        touched = ApiToken.objects.get().last_used is not None
        after = client.post("/api/v1/claims/", claim, format="json")
        print(read.status_code, read.json()["username"], touched, write.status_code,
              write["Retry-After"], write.json()["error"]["code"], after.status_code)
        """
    )
    result = site_python(busy, env={**env, "MICROSCOPE_SQLITE_TIMEOUT": "1"})
    assert result.stdout.split() == ["200", "busy", "False", "503", "5", "busy", "201"], (
        result.stdout + result.stderr
    )

    # A broker that cannot be reached: the job, stored already, stays queued for the sweep,
    # and whoever asked (a page, a command) hears a warning, not a traceback.
    unreachable = textwrap.dedent(
        """
        import django
        django.setup()
        from django.utils import timezone
        from jobs.lifecycle import render_job_enqueue
        from jobs.models import RenderJob
        from neurons.models import Layer
        layer = Layer.objects.get(name="mixed4c")
        job = RenderJob.objects.create(
            model=layer.model, layer=layer, kind="featurevis", channel_stop=1, task_id="task",
            published=timezone.now(), publishes=1,
        )
        sent = render_job_enqueue(job.pk, "task")
        job.refresh_from_db()
        print(sent, job.status, job.published, job.publishes)
        """
    )
    result = site_python(unreachable, env={**env, "CELERY_BROKER_URL": "redis://127.0.0.1:1/0"})
    # Not counted as published: the sweep publishes it at its first look.
    assert result.stdout.split() == ["False", "queued", "None", "0"], result.stderr
    assert "is queued, but its message could not be sent (OperationalError: " in result.stderr
    assert "Traceback" not in result.stderr
