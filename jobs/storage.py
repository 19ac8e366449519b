"""Artifacts stored: files in media storage (default_storage: disk or S3), rows in the
database. Same key, same row: a retried or duplicated job stores nothing twice."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction

from jobs.models import Artifact, RenderJob, artifact_key
from neurons.models import Neuron

__all__ = [
    "artifact_create",
    "artifact_keys_existing",
    "artifacts_bulk_create",
    "example_image_save",
]


def artifact_keys_existing(keys: Iterable[str]) -> set[str]:
    return set(Artifact.objects.filter(key__in=list(keys)).values_list("key", flat=True))


def _save_file(name: str, content: bytes) -> str:
    """Write a media file under exactly this name (a retried job overwrites its own leftover)."""
    if default_storage.exists(name):
        default_storage.delete(name)
    return default_storage.save(name, ContentFile(content))


def artifact_create(
    *,
    kind: str,
    neuron: Neuron,
    identity: Mapping[str, Any],
    images: Sequence[bytes] = (),
    data: Mapping[str, Any] | None = None,
    job: RenderJob | None = None,
) -> Artifact:
    """Store one artifact: its PNG files in media storage, then its row. Same key, same row."""
    key = artifact_key(**identity)
    found = Artifact.objects.filter(key=key).first()
    if found is not None:
        return found
    layer = neuron.layer
    stem = f"artifacts/{layer.model.slug}/{layer.name}/{neuron.index:04d}-{kind}-{key[:16]}"
    files = [
        _save_file(f"{stem}.png" if len(images) == 1 else f"{stem}-{i}.png", content)
        for i, content in enumerate(images)
    ]
    try:
        with transaction.atomic():
            return Artifact.objects.create(
                kind=kind,
                layer=layer,
                neuron=neuron,
                params=dict(identity),
                key=key,
                files=files,
                data=dict(data or {}),
                job=job,
            )
    except IntegrityError:  # another worker stored the same key meanwhile: same files
        return Artifact.objects.get(key=key)


def artifacts_bulk_create(*, artifacts: Sequence[Artifact]) -> int:
    """Store many file-less artifacts (dataset examples) at once; existing keys are skipped."""
    existing = artifact_keys_existing(a.key for a in artifacts)
    fresh = [a for a in artifacts if a.key not in existing]
    Artifact.objects.bulk_create(fresh, batch_size=500, ignore_conflicts=True)
    return len(fresh)


def example_image_save(*, name: str, content: bytes) -> str:
    """A corpus image as the model saw it, stored once under its content's hash."""
    if not default_storage.exists(name):
        default_storage.save(name, ContentFile(content))
    return name
