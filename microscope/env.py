"""Tiny typed readers of the environment; a bad value is a clear configuration error."""

from __future__ import annotations

import os
import re
import secrets
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

TRUE = {"1", "true", "yes", "on"}
FALSE = {"0", "false", "no", "off", ""}


def _set_but_empty(name: str, default: object) -> ImproperlyConfigured:
    return ImproperlyConfigured(
        f"{name} is set but empty: unset it for the default ({default}), or give a value"
    )


def env_str(name: str, default: str) -> str:
    """The variable's text, or the default when it is unset. Set but empty, where the
    default is not, it is refused: ``MICROSCOPE_VAR_DIR=`` meant the current folder,
    ``CELERY_BROKER_URL=`` a RabbitMQ nobody ran, and a deployment whose ``DATABASE_URL``
    came through empty would start on a new SQLite file as if its data were gone."""
    value = os.environ.get(name)
    if value is None:
        return default
    if not value.strip() and default:
        raise _set_but_empty(name, default)
    return value.strip()


def env_choice(name: str, default: str, pattern: str, example: str) -> str:
    """``env_str`` whose value must match ``pattern`` (case-insensitive) as a whole."""
    value = env_str(name, default)
    if not re.fullmatch(pattern, value, re.IGNORECASE):
        raise ImproperlyConfigured(f"{name}={value!r:.80} is not valid here; e.g. {example}")
    return value


def broker_url(default: str) -> str:
    """CELERY_BROKER_URL, whose transport kombu must know: else the first job a page or a
    command queued would fail with kombu's KeyError. Only the scheme is said back, never
    a password."""
    from kombu.transport import TRANSPORT_ALIASES  # kombu alone, not Celery: a few ms
    from kombu.utils.url import parse_url

    url = env_str("CELERY_BROKER_URL", default)
    scheme, found, rest = url.partition("://")
    transport = scheme.partition("+")[0].lower()  # redis+socket://; kombu lowers it too
    if not found or transport not in TRANSPORT_ALIASES:
        # Said back only if it is a scheme: in "user:pa://ss@host" it is part of a password.
        named = re.fullmatch(r"[a-z][a-z0-9.-]{0,30}", transport)
        said = f"{transport!r} is not a broker kombu knows" if found and named else "no scheme://"
        raise ImproperlyConfigured(
            f"CELERY_BROKER_URL: {said}; e.g. redis://host:6379/0 or amqp://user:pass@host//"
        )
    url = f"{scheme.lower()}://{rest}"  # as kombu reads it, and the settings that test it
    for each in url.split(";"):  # failover URLs
        try:
            parse_url(each)  # as the first job sent would: a port out of range, a bad [IPv6
        except ValueError as exc:  # kombu's and urllib's messages name no password
            raise ImproperlyConfigured(f"CELERY_BROKER_URL cannot be read: {exc}") from None
    return url


def site_url() -> str:
    """MICROSCOPE_SITE_URL, the instance's address as other instances know it
    (``https://microscope.lab-a.example/``), ending in "/"; "" (unset): each request's own
    address, which depends on the Host it came by."""
    value = env_str("MICROSCOPE_SITE_URL", "")
    if not value:
        return ""
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018  (a port out of range, or not a number, raises)
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise ImproperlyConfigured(
            f"MICROSCOPE_SITE_URL={value!r:.80} is not the site's address; "
            "e.g. https://microscope.lab-a.example/"
        )
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ImproperlyConfigured("MICROSCOPE_SITE_URL: an address only, no user, query or #")
    return f"{parts.scheme}://{parts.netloc.lower()}{parts.path.rstrip('/')}/"


def env_rate(name: str, default: str) -> str | None:
    """An API throttle's rate, ``600/min`` (second, minute, hour or day); empty turns it off."""
    value = os.environ.get(name, default).strip()
    if not value:
        return None
    if not re.fullmatch(r"[0-9]+/(s|sec|second|m|min|minute|h|hour|d|day)", value):
        raise ImproperlyConfigured(f"{name}={value!r:.80} is not a rate; e.g. 600/min, 10/s")
    return value


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    if value.lower() in TRUE:
        return True
    if value.lower() in FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={value!r} is not a boolean; use 1/0, true/false, yes/no")


def env_int(name: str, default: int, minimum: int = 1) -> int:
    """A whole number in ASCII digits, at least ``minimum``; unset, the default."""
    if (value := os.environ.get(name)) is None:
        return default
    if not (value := value.strip()):
        raise _set_but_empty(name, default)
    if not re.fullmatch(r"-?[0-9]+", value):
        raise ImproperlyConfigured(f"{name}={value!r:.80} is not a whole number")
    if int(value) < minimum:
        raise ImproperlyConfigured(f"{name}={value} is less than {minimum}, the least it can be")
    return int(value)


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def folder(path: Path, variable: str) -> Path:
    """``path``, made if missing; a folder that cannot be made (a read-only disk, a file in
    the way) is a configuration error naming the variable that put it there."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ImproperlyConfigured(
            f"{path} cannot be made ({error.strerror or error}): set {variable} to a folder "
            "this user may write"
        ) from None
    return path


def database_url(conn_max_age: int, var_dir: Path) -> dict[str, Any]:
    """Django's database from DATABASE_URL (default: SQLite in ``var_dir``); a URL that
    does not parse is a configuration error that says so, not the library's traceback."""
    value = env_str("DATABASE_URL", f"sqlite:///{var_dir / 'db.sqlite3'}")
    try:
        return dj_database_url.parse(value, conn_max_age=conn_max_age)
    except ValueError as error:  # its UnknownSchemeError and ParseError among them
        shown = re.sub(r"//.*@", "//...@", value)[:120]  # no password in a log
        raise ImproperlyConfigured(
            f"DATABASE_URL={shown!r} is not a database URL ({error}); e.g. "
            "postgres://user@host:5432/name or sqlite:////absolute/path.sqlite3"
        ) from None


def local_secret_key(path: Path) -> str:
    """A random secret key made once and kept in ``path`` (readable by its owner only), for
    a site run without DJANGO_SECRET_KEY: never a key that is public in the code.

    It is written whole to a file beside it and linked into place, so that a process that
    starts meanwhile (the worker) reads the same key, never an empty one; an empty file
    that an older version left is replaced."""
    try:
        key = path.read_text().strip() if path.exists() else ""
        if key:
            return key
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, made = tempfile.mkstemp(dir=path.parent, prefix=".secret_key.")  # mode 0600
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(50))
        try:
            if path.exists():
                os.replace(made, path)  # it was empty
            else:
                os.link(made, path)  # fails if another process linked its key first
        except FileExistsError:
            pass
        except OSError:  # a file system without hard links (some network mounts)
            if not path.exists():
                os.replace(made, path)
        finally:
            Path(made).unlink(missing_ok=True)
        return path.read_text().strip()
    except OSError as error:
        raise ImproperlyConfigured(
            f"the secret key file {path} cannot be made or read ({error.strerror or error}); "
            "set DJANGO_SECRET_KEY, or MICROSCOPE_VAR_DIR to a folder this user may write"
        ) from None


def s3_storages() -> dict[str, dict[str, Any]]:
    """Django's STORAGES for media in S3-compatible object storage, from MICROSCOPE_S3_*
    (credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, as boto3 reads them)."""
    return {
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": env_str("MICROSCOPE_S3_BUCKET", ""),
                "endpoint_url": env_str("MICROSCOPE_S3_ENDPOINT_URL", "") or None,
                "region_name": env_str("MICROSCOPE_S3_REGION", "") or None,
                "custom_domain": env_str("MICROSCOPE_S3_CUSTOM_DOMAIN", "") or None,
                "querystring_auth": env_bool("MICROSCOPE_S3_SIGNED_URLS", False),
                "file_overwrite": True,
            },
        },
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
