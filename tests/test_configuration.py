"""Settings from the environment: a bad value, or one set but empty, is one line naming the
variable; unset, it is the default."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from microscope.env import (
    broker_url,
    database_url,
    env_choice,
    env_int,
    env_rate,
    env_str,
    folder,
    local_secret_key,
    site_url,
)
from tests.conftest import REPO


@pytest.mark.parametrize(
    ("value", "said"),
    [
        ("-5", "MICROSCOPE_X=-5 is less than 1"),
        ("0", "MICROSCOPE_X=0 is less than 1"),
        ("\u0661\u0662", "is not a whole number"),  # Arabic-Indic digits
        ("1_000", "is not a whole number"),
        ("12.5", "is not a whole number"),
    ],
)
def test_a_number_is_ascii_digits_and_at_least_its_least(
    monkeypatch: pytest.MonkeyPatch, value: str, said: str
) -> None:
    monkeypatch.setenv("MICROSCOPE_X", value)
    with pytest.raises(ImproperlyConfigured, match=said):
        env_int("MICROSCOPE_X", 5)


def test_set_but_empty_is_refused_and_bad_values_name_their_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # A deployment whose DATABASE_URL came through empty must not start on a new SQLite file.
    for name in ("MICROSCOPE_X", "MICROSCOPE_VAR_DIR", "CELERY_BROKER_URL", "DATABASE_URL"):
        monkeypatch.setenv(name, " ")
    with pytest.raises(ImproperlyConfigured, match="MICROSCOPE_VAR_DIR is set but empty"):
        env_str("MICROSCOPE_VAR_DIR", "var")
    with pytest.raises(ImproperlyConfigured, match="MICROSCOPE_X is set but empty"):
        env_int("MICROSCOPE_X", 5)
    with pytest.raises(ImproperlyConfigured, match="DATABASE_URL is set but empty"):
        database_url(60, tmp_path)
    assert env_str("MICROSCOPE_X", "") == ""  # no default to fall back on: empty is the value
    monkeypatch.delenv("DATABASE_URL")
    assert database_url(60, tmp_path)["NAME"] == str(tmp_path / "db.sqlite3")
    monkeypatch.setenv("API_THROTTLE_ANON", "")
    assert env_rate("API_THROTTLE_ANON", "600/min") is None  # off
    for rate in ("10/fortnight", "garbage", "-1/min"):
        monkeypatch.setenv("API_THROTTLE_ANON", rate)
        with pytest.raises(ImproperlyConfigured, match=r"API_THROTTLE_ANON=.* is not a rate"):
            env_rate("API_THROTTLE_ANON", "600/min")
    monkeypatch.setenv("LOG_LEVEL", "debug")
    assert env_choice("LOG_LEVEL", "INFO", "DEBUG|INFO", "INFO") == "debug"
    monkeypatch.setenv("MICROSCOPE_RENDER_DEVICE", "tpu")
    with pytest.raises(ImproperlyConfigured, match="MICROSCOPE_RENDER_DEVICE='tpu'"):
        env_choice("MICROSCOPE_RENDER_DEVICE", "", "|cpu|cuda", "cpu")
    for url in ("garbage", "postgres://u:secret@h:notaport/db", "postgres://u:se/cret@db/x"):
        monkeypatch.setenv("DATABASE_URL", url)
        with pytest.raises(ImproperlyConfigured, match=r"DATABASE_URL=.* is not a database URL"):
            database_url(60, tmp_path)
    with pytest.raises(ImproperlyConfigured) as refused:
        database_url(60, tmp_path)
    assert "se/cret" not in str(refused.value) and "//...@db/x" in str(refused.value)


def test_a_broker_url_kombu_cannot_use_is_refused_without_saying_its_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for url in ("amqp://guest:secret@mq//", "redis+socket:///run/redis.sock", "REDIS://h:6379"):
        monkeypatch.setenv("CELERY_BROKER_URL", url)
        assert broker_url("filesystem://localhost//") == url.replace("REDIS", "redis")
    for url, said in (
        ("nonsense", "no scheme://"),
        ("rabbit://guest:secret@mq//", "'rabbit' is not a broker kombu knows"),
        ("guest:sec://ret@mq", "no scheme://"),
        ("redis://:secret@mq:99999/0", "cannot be read: Port out of range"),
        ("amqp://mq//;redis://:secret@[::1", "cannot be read: Invalid IPv6 URL"),
    ):
        monkeypatch.setenv("CELERY_BROKER_URL", url)
        with pytest.raises(ImproperlyConfigured) as refused:
            broker_url("filesystem://localhost//")
        assert said in str(refused.value) and "sec" not in str(refused.value)  # the password


def test_the_site_url_is_an_address_ending_in_a_slash(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MICROSCOPE_SITE_URL", raising=False)
    assert site_url() == ""  # unset: each request's own address
    monkeypatch.setenv("MICROSCOPE_SITE_URL", "https://Microscope.Lab-A.example:8443/mic")
    assert site_url() == "https://microscope.lab-a.example:8443/mic/"
    for bad in ("lab-a", "ftp://lab-a.example/", "https://lab-a.example:99999/",
                "https://u:secret@lab-a.example/", "https://lab-a.example/?x=1"):  # fmt: skip
        monkeypatch.setenv("MICROSCOPE_SITE_URL", bad)
        with pytest.raises(ImproperlyConfigured, match="MICROSCOPE_SITE_URL") as refused:
            site_url()
        assert "secret" not in str(refused.value)


def test_a_command_run_with_a_bad_variable_says_so_in_one_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env |= {"MICROSCOPE_VAR_DIR": str(tmp_path), "LOG_LEVEL": "loud"}
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert result.returncode == 1
    assert (
        result.stderr == "configuration: LOG_LEVEL='loud' is not valid here; e.g. INFO or DEBUG\n"
    )


def test_a_command_with_a_database_that_does_not_answer_says_so_in_one_line(
    tmp_path: Path,
) -> None:
    with socket.socket() as s:  # a port that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = os.environ | {
        "MICROSCOPE_VAR_DIR": str(tmp_path),
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:{port}/test",
    }
    for command in (["migrate"], ["user_create", "alice"], ["atlas", "mobilenet_v2"]):
        result = subprocess.run(
            [sys.executable, "manage.py", *command],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert result.returncode == 1, command
        (line,) = result.stderr.splitlines()
        assert line.startswith("database: connection failed") and str(port) in line, line
        assert "(see DATABASE_URL;" in line and "Traceback" not in result.stderr


def test_the_local_secret_key_is_made_once_whole_and_an_empty_one_is_replaced(
    tmp_path: Path,
) -> None:
    path = tmp_path / "var" / "secret_key"
    key = local_secret_key(path)
    assert len(key) > 40 and local_secret_key(path) == key
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert sorted(p.name for p in path.parent.iterdir()) == ["secret_key"]
    path.write_text("")  # as a crash between creating the file and writing it once left it
    assert len(local_secret_key(path)) > 40
    (tmp_path / "blocked").write_text("a file, not a folder")
    with pytest.raises(ImproperlyConfigured, match="cannot be made or read"):
        local_secret_key(tmp_path / "blocked" / "secret_key")


def test_a_folder_that_cannot_be_made_names_its_variable(tmp_path: Path) -> None:
    (tmp_path / "var").write_text("a file where the folder should be")
    with pytest.raises(ImproperlyConfigured, match=r"var/static cannot be made .*MICROSCOPE_VAR"):
        folder(tmp_path / "var" / "static", "MICROSCOPE_VAR_DIR")
    assert folder(tmp_path / "new" / "static", "MICROSCOPE_VAR_DIR").is_dir()
