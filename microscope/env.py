"""Tiny typed readers of the environment; a bad value is a clear configuration error."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

from django.core.exceptions import ImproperlyConfigured

TRUE = {"1", "true", "yes", "on"}
FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str) -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    if value.lower() in TRUE:
        return True
    if value.lower() in FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={value!r} is not a boolean; use 1/0, true/false, yes/no")


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not an integer") from None


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def local_secret_key(path: Path) -> str:
    """A random secret key made once and kept in ``path`` (readable by its owner only), for
    a site run without DJANGO_SECRET_KEY: never a key that is public in the code."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process (the worker) made it meanwhile
            pass
        else:
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_urlsafe(50))
    return path.read_text().strip()


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
