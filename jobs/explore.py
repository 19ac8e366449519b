"""Asking which neurons fire on an image: uploads stored once per owner, explorations keyed
like artifacts and computed by a worker (``jobs.executors.explore``). Torch-free."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.http import Http404

import render
from jobs import params
from jobs.apps import EXPLORATION_KIND
from jobs.lifecycle import render_job_cancel
from jobs.models import Exploration, RenderJob, Upload, artifact_key
from jobs.planning import render_job_create
from jobs.uploads import image_check
from neurons.models import Model
from render import catalog

__all__ = [
    "corpus_images",
    "exploration_get",
    "exploration_request",
    "upload_delete",
]

TOP = 8  # channels per layer (jobs.executors.explore reads it)
MAX_ACTIVE = 5  # a researcher's explorations waiting for a worker at once


def _corpus_root() -> Path:
    """The corpus the neuron pages' examples are swept from."""
    return params.corpus_path(params.examples_params()["corpus"])


def corpus_images() -> list[str]:
    """The demo corpus's images, by name, for the page's picker."""
    root = _corpus_root()
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png"})


def _corpus_bytes(name: str) -> bytes:
    if name not in set(corpus_images()):  # names only from the list: no path in it
        raise ValidationError({"corpus_image": f"{name[:80]!r} is not an image of the corpus"})
    return (_corpus_root() / Path(name).name).read_bytes()


def _upload(*, owner: AbstractBaseUser, data: bytes, name: str) -> tuple[Upload, str]:
    """The owner's upload of this picture: found again by its sha256, or stored under a
    name nobody can guess (its own, even for a picture another researcher uploaded too).
    Also the name of the file it wrote, if it wrote one ("" else)."""
    checked = image_check(data)
    found = Upload.objects.filter(owner=owner, sha256=checked.sha256).first()
    if found is not None:
        if not default_storage.exists(found.file):  # lost from storage: put it back
            default_storage.save(found.file, ContentFile(checked.content))
        return found, ""
    stored = default_storage.save(
        f"uploads/{secrets.token_hex(16)}.png", ContentFile(checked.content)
    )
    try:
        with transaction.atomic():
            created = Upload.objects.create(
                owner=owner,
                name=name[:200] or "image",
                file=stored,
                sha256=checked.sha256,
                width=checked.width,
                height=checked.height,
            )
            return created, stored
    except IntegrityError:  # the same upload, twice at once: keep the other one
        default_storage.delete(stored)
        return Upload.objects.get(owner=owner, sha256=checked.sha256), ""


def _active(owner: AbstractBaseUser) -> int:
    return Exploration.objects.filter(
        upload__owner=owner, result={}, job__status__in=RenderJob.ACTIVE
    ).count()


def exploration_request(
    *,
    owner: AbstractBaseUser,
    model: Model,
    data: bytes | None = None,
    name: str = "",
    corpus_image: str = "",
) -> Exploration:
    """Store the image (an upload's bytes, or a corpus image by name) and ask a worker which
    channels fire on it; the same image and model again return the same exploration.
    All of it or nothing. Raises ValidationError (field: message) on bad input."""
    if not model.has_weights:
        raise ValidationError({"model": catalog.missing_message(catalog.get(model.slug))})
    if data is not None and corpus_image:
        raise ValidationError({"image": "send an image or name one of the corpus, not both"})
    if data is None and not corpus_image:
        raise ValidationError({"image": "send an image, or name one of the corpus"})
    if corpus_image:
        data, name = _corpus_bytes(corpus_image), corpus_image
    written = ""
    try:
        with transaction.atomic():
            upload, written = _upload(owner=owner, data=data or b"", name=name)
            key = artifact_key(
                kind=EXPLORATION_KIND,
                image_sha256=upload.sha256,
                model=model.slug,
                weights_sha256=model.weights_sha256,
                top=TOP,
                code_version=render.CODE_VERSION,
            )
            exploration, created = Exploration.objects.select_for_update().get_or_create(
                upload=upload, model=model, defaults={"key": key}
            )
            stale = exploration.key != key  # new weights or code since: computed again
            # No result, and no job on its way (failed, cancelled, or gone): asked again.
            idle = not exploration.result and (
                exploration.job is None or not exploration.job.is_active
            )
            if created or stale or idle:
                if _active(owner) >= MAX_ACTIVE:
                    raise ValidationError(
                        {"image": f"{MAX_ACTIVE} of your explorations are still running; "
                         "ask again when one is done"}
                    )  # fmt: skip
                exploration.key, exploration.result = key, {}
                exploration.job = render_job_create(
                    model=model,
                    layer=None,
                    kind=EXPLORATION_KIND,
                    params={"exploration": exploration.pk},
                    requested_by=owner,
                )
                exploration.save(update_fields=["key", "result", "job"])
    except BaseException:  # nothing stored: not the file either
        if written:
            default_storage.delete(written)
        raise
    return exploration


def exploration_get(*, pk: int, viewer: AbstractBaseUser) -> Exploration:
    """An exploration its owner (or staff) may see; a 404 for anyone else."""
    found = Exploration.objects.select_related("upload", "model", "job").filter(pk=pk).first()
    if found is None or not (
        viewer.is_authenticated and (viewer.is_staff or found.upload.owner_id == viewer.pk)
    ):
        raise Http404(f"there is no exploration {pk} of yours")
    return found


def upload_delete(*, upload: Upload, viewer: AbstractBaseUser) -> None:
    """Delete an upload, its file (its own) and its explorations, cancelling their jobs still
    queued or running: its owner only."""
    if upload.owner_id != viewer.pk:
        raise PermissionDenied("only its uploader may delete an image")
    with transaction.atomic():
        for job_id in upload.explorations.exclude(job=None).values_list("job_id", flat=True):
            render_job_cancel(job_id=job_id, by=viewer.get_username())  # nothing left to do
        upload.delete()  # its file goes with it (upload_file_delete)


def upload_file_delete(sender: type[Upload], instance: Upload, **kwargs: Any) -> None:
    """An upload's file is deleted once its row's deletion is committed, however the row
    goes: its owner deletes it, or their account is deleted (``post_delete``, connected in
    ``JobsConfig.ready``)."""
    name = instance.file
    if name:
        # robust: a storage error is logged, and the other files of the same deletion go.
        transaction.on_commit(lambda: default_storage.delete(name), robust=True)
