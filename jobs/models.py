"""What workers make (artifacts) and the jobs that ask them to.

An artifact's identity is a hash of everything that made it (see :func:`artifact_key`):
same key, same file, never rendered twice. A render job is a row first; its Celery
message carries only the job's id.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import models
from django.urls import reverse
from django.utils import timezone

from jobs import kinds
from neurons.models import Layer, Model, Neuron


class ArtifactKind(models.TextChoices):
    """What an artifact is. Jobs of the kind of the same name make them (jobs.kinds)."""

    FEATUREVIS = "featurevis", "feature visualization"
    FEATUREVIS_NEURON = "featurevis_neuron", "feature visualization of the centre neuron"
    FEATUREVIS_NEGATIVE = "featurevis_negative", "negative feature visualization"
    FEATUREVIS_DIVERSITY = "featurevis_diversity", "diverse feature visualizations"
    # Top and bottom dataset examples with their max/min positions, and the histogram.
    EXAMPLES = "examples", "dataset examples"
    # A neuron's strongest inputs (or outputs) by expanded weights, with kernel heat maps.
    # A job of this kind computes one layer from the layer below: inputs of the layer's
    # neurons, outputs of the lower layer's.
    WEIGHTS = "weights", "connecting weights"


# render.featurevis's objective for each feature visualization kind, and back.
OBJECTIVE_BY_KIND = {
    ArtifactKind.FEATUREVIS: "channel",
    ArtifactKind.FEATUREVIS_NEURON: "neuron",
    ArtifactKind.FEATUREVIS_NEGATIVE: "negative",
    ArtifactKind.FEATUREVIS_DIVERSITY: "diversity",
}
KIND_BY_OBJECTIVE = {objective: kind for kind, objective in OBJECTIVE_BY_KIND.items()}


def artifact_key(**parts: Any) -> str:
    """sha256 of the canonical JSON of everything that made an artifact."""
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


class Artifact(models.Model):
    kind = models.CharField(max_length=24, choices=ArtifactKind.choices)
    layer = models.ForeignKey(Layer, on_delete=models.CASCADE, related_name="artifacts")
    neuron = models.ForeignKey(Neuron, on_delete=models.CASCADE, related_name="artifacts")
    # Everything that made it: objective, steps, size, seed, weights sha256, code version...
    params = models.JSONField(default=dict)
    key = models.CharField(max_length=64, unique=True)
    # Names in media storage (default_storage): one PNG, or four for diversity; for
    # examples, the top example's crop (the neuron's thumbnail until it has a feature
    # visualization; the images are listed in data); for weights, none (their heat maps are
    # small data: URIs in data).
    files = models.JSONField(default=list, blank=True)
    # Examples: top and bottom lists (image, value, pos, box, file) and the histogram.
    # Weights: direction, the other layer, and the connections (see jobs.services).
    data = models.JSONField(default=dict, blank=True)
    job = models.ForeignKey(
        "RenderJob", null=True, blank=True, on_delete=models.SET_NULL, related_name="artifacts"
    )
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["layer", "neuron", "kind", "-created"]
        indexes = [models.Index(fields=["layer", "kind"]), models.Index(fields=["neuron", "kind"])]

    def __str__(self) -> str:
        return f"{self.kind} {self.neuron_id} {self.key[:12]}"

    @property
    def urls(self) -> list[str]:
        return [default_storage.url(name) for name in self.files]


class RenderJob(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"
        CANCELLED = "cancelled"

    ACTIVE = (Status.QUEUED, Status.RUNNING)

    model = models.ForeignKey(Model, on_delete=models.CASCADE, related_name="render_jobs")
    # None: every significant layer of the model (one sweep covers them all).
    layer = models.ForeignKey(
        Layer, null=True, blank=True, on_delete=models.CASCADE, related_name="render_jobs"
    )
    # A kind of jobs.kinds' registry (its app declares it).
    kind = models.CharField(max_length=24)
    # Channels [start, stop); stop None: to the layer's last channel.
    channel_start = models.PositiveIntegerField(default=0)
    channel_stop = models.PositiveIntegerField(null=True, blank=True)
    # Feature vis: steps, size, seed, lr. Examples: corpus, k, bins. Weights: top.
    # Evidence: the id of the annotations.Evidence row it computes.
    params = models.JSONField(default=dict)
    status = models.CharField(max_length=9, choices=Status.choices, default=Status.QUEUED)
    progress_done = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(default=0)
    # Where a long job is within its unit of progress: "channels 0-7: step 120 of 512".
    progress_note = models.CharField(max_length=200, blank=True)
    # Who asked (None: a command, or another app's job); they may cancel it.
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+",
    )  # fmt: skip
    error = models.TextField(blank=True)
    task_id = models.CharField(max_length=64, blank=True)
    # When its message was last published: a queued job not claimed long after is one whose
    # message the broker lost, and it is published again (jobs.lifecycle.render_job_sweep).
    published = models.DateTimeField(null=True, blank=True)
    publishes = models.PositiveIntegerField(default=0)
    worker = models.CharField(max_length=200, blank=True)  # host and pid of the last claimant
    attempts = models.PositiveIntegerField(default=0)
    created = models.DateTimeField(auto_now_add=True)
    started = models.DateTimeField(null=True, blank=True)
    # Written every few seconds while a worker holds the job: a running job whose
    # heartbeat stopped belongs to a worker that died, and may be claimed again.
    heartbeat = models.DateTimeField(null=True, blank=True)
    finished = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created"]
        indexes = [models.Index(fields=["status", "heartbeat"])]

    def __str__(self) -> str:
        return f"job {self.pk}: {self.kind} {self.target}"

    @property
    def target(self) -> str:
        where = f"{self.model.slug}/{self.layer.name}" if self.layer_id else self.model.slug
        stop = "" if self.channel_stop is None else self.channel_stop - 1
        if self.channel_start == 0 and self.channel_stop is None:
            return where
        if self.channel_stop == self.channel_start + 1:
            return f"{where}:{self.channel_start}"
        return f"{where}:{self.channel_start}-{stop}"

    @property
    def kind_label(self) -> str:
        return kinds.label(self.kind)

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE

    def channels_of(self, layer: Layer) -> range:
        """The channels of ``layer`` this job makes (its range cut to the layer's size)."""
        stop = (
            layer.channels if self.channel_stop is None else min(self.channel_stop, layer.channels)
        )
        return range(min(self.channel_start, stop), stop)

    def covers(self, layer: Layer, index: int) -> bool:
        if self.layer_id is not None and self.layer_id != layer.pk:
            return False
        return self.channel_start <= index and (
            self.channel_stop is None or index < self.channel_stop
        )

    @property
    def duration(self) -> float | None:
        """Seconds it ran (so far, while running); None before it started."""
        if self.started is None:
            return None
        end = self.finished if self.finished is not None and not self.is_active else None
        return max(0.0, ((end or timezone.now()) - self.started).total_seconds())

    @property
    def duration_text(self) -> str:
        seconds = self.duration
        if seconds is None:
            return ""
        minutes, rest = divmod(round(seconds), 60)
        hours, minutes = divmod(minutes, 60)
        if hours:
            return f"{hours} h {minutes} min"
        return f"{minutes} min {rest} s" if minutes else f"{rest} s"

    def cancellable_by(self, user: Any) -> bool:
        """Whether ``user`` may cancel it now: it is active and theirs to cancel."""
        return self.is_active and self.cancels_for(user)

    def cancels_for(self, user: Any) -> bool:
        """Whether ``user`` is who may cancel it, whatever its state: its requester, or
        staff, for a kind people ask for (an app's own jobs, claims' evidence, end as that
        app says)."""
        if user is None or not user.is_authenticated:
            return False
        if self.kind not in kinds.names(requestable=True):
            return False
        return bool(user.is_staff or (self.requested_by_id and self.requested_by_id == user.pk))

    @property
    def requester(self) -> str:
        return self.requested_by.get_username() if self.requested_by_id else ""

    def as_status(self) -> dict[str, Any]:
        return {
            "id": self.pk,
            "kind": self.kind,
            "target": self.target,
            "status": self.status,
            "done": self.progress_done,
            "total": self.progress_total,
            "note": self.progress_note,
            "duration": self.duration,
            "error": self.error,
            "attempts": self.attempts,
            "created": self.created.isoformat() if self.created else None,
            "started": self.started.isoformat() if self.started else None,
            "finished": self.finished.isoformat() if self.finished else None,
        }


class Upload(models.Model):
    """An image a researcher uploaded (or picked from the corpus) to explore: checked and
    normalized by ``jobs.uploads``, stored in media storage, theirs to delete."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=200)  # as they called it, for display only
    file = models.CharField(max_length=300)  # its name in media storage
    sha256 = models.CharField(max_length=64)  # of the stored file
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["owner", "sha256"], name="upload_unique_per_owner")
        ]

    def __str__(self) -> str:
        return f"upload {self.pk}: {self.name}"

    @property
    def url(self) -> str:
        return default_storage.url(self.file)


class Exploration(models.Model):
    """Which channels of every significant layer of a model fire most on one upload, with
    where (``result``; see ``jobs.executors.explore``). Its ``key`` hashes what makes the
    result (the image's sha256, the model, its weights, the code): the same image and model
    give the same result, computed once."""

    upload = models.ForeignKey(Upload, on_delete=models.CASCADE, related_name="explorations")
    model = models.ForeignKey(Model, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=64, db_index=True)
    result = models.JSONField(default=dict, blank=True)
    job = models.ForeignKey(RenderJob, null=True, blank=True, on_delete=models.SET_NULL)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["upload", "model"], name="exploration_unique")
        ]

    def __str__(self) -> str:
        return f"exploration {self.pk} of {self.upload_id} on {self.model_id}"

    def get_absolute_url(self) -> str:
        return reverse("jobs:exploration", args=[self.pk])

    @property
    def status(self) -> str:
        """done once stored; else its job's status (queued, running, failed, cancelled), or
        queued when it has no job (its job was deleted: asking again queues one)."""
        if self.result:
            return "done"
        return self.job.status if self.job is not None else "queued"
