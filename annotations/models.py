"""Claims about neurons, their revisions and structured terms, reviews and comments.

Nothing here is ever overwritten or deleted by the site: an edit adds a revision, a changed
review keeps the old one (``current=False``), and moderation hides instead of deleting.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib.postgres.search import SearchVectorField
from django.db import models
from django.db.models import Q
from django.urls import reverse

from neurons.models import Neuron


class Kind(models.TextChoices):
    FEATURE = "feature", "feature"
    CIRCUIT = "circuit", "circuit"


class Status(models.TextChoices):
    PROPOSED = "proposed", "proposed"
    SUPPORTED = "supported", "supported"
    DISPUTED = "disputed", "disputed"
    RETRACTED = "retracted", "retracted"


class Verdict(models.TextChoices):
    SUPPORT = "support", "support"
    DISPUTE = "dispute", "dispute"
    NEEDS_EVIDENCE = "needs_evidence", "needs evidence"


class Role(models.TextChoices):
    TARGET = "target", "target"
    COMPONENT = "component", "component"


class Claim(models.Model):
    # The claim's identity across Microscope instances (export/import), unlike its pk.
    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    target = models.ForeignKey(Neuron, on_delete=models.PROTECT, related_name="claims")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="claims"
    )
    # The latest revision; set by the services in the same transaction as the revision.
    current_revision = models.ForeignKey(
        "ClaimRevision", on_delete=models.PROTECT, null=True, related_name="+"
    )
    # Derived from the reviews by services.claim_status_decide, stored to filter and list fast.
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PROPOSED)
    support_count = models.PositiveIntegerField(default=0)
    dispute_count = models.PositiveIntegerField(default=0)
    needs_evidence_count = models.PositiveIntegerField(default=0)
    retracted = models.BooleanField(default=False)
    retracted_at = models.DateTimeField(null=True, blank=True)
    hidden = models.BooleanField(default=False)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created", "-id"]
        indexes = [
            models.Index(fields=["status"], name="claim_status_idx"),
            # Lists and the API's cursor walk claims newest first: without it, a page of 50
            # sorted every claim (on disk, at 100,000).
            models.Index(fields=["-created", "-id"], name="claim_newest_idx"),
        ]

    def __str__(self) -> str:
        return f"claim {self.pk} on {self.target_id}"

    def get_absolute_url(self) -> str:
        return reverse("annotations:claim", args=[self.pk])

    @property
    def label(self) -> str:
        return self.current_revision.label if self.current_revision else ""

    @property
    def revision_number(self) -> int:
        return self.current_revision.number if self.current_revision else 0


class ClaimRevision(models.Model):
    claim = models.ForeignKey(Claim, on_delete=models.CASCADE, related_name="revisions")
    number = models.PositiveIntegerField()
    label = models.CharField(max_length=200)
    # Circuit claims: the canonical expression, references in the model's short form
    # ("4c:447 = 0.8*4b:373 + 4b:237"); the model is the target's. Blank for feature claims.
    expression = models.TextField(blank=True)
    argument = models.TextField()
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="claim_revisions"
    )
    based_on = models.PositiveIntegerField(null=True, blank=True)
    created = models.DateTimeField(auto_now_add=True)
    # PostgreSQL's full-text document of the label (weight A) and the argument (B), kept by
    # a trigger (migration 0006) and GIN-indexed: a search ranks on it without parsing every
    # matching text again. Unused (NULL) elsewhere, where search is a substring match.
    search_document = SearchVectorField(null=True, editable=False)

    class Meta:
        ordering = ["claim", "number"]
        constraints = [
            # The backstop against two edits based on the same revision.
            models.UniqueConstraint(fields=["claim", "number"], name="revision_unique_number"),
        ]

    def __str__(self) -> str:
        return f"claim {self.claim_id} revision {self.number}"


class ClaimTerm(models.Model):
    """One neuron of a revision: the target (every claim has one) and each component.

    "Every claim that involves 4b:373" is then one query over the current revisions' terms.
    """

    revision = models.ForeignKey(ClaimRevision, on_delete=models.CASCADE, related_name="terms")
    neuron = models.ForeignKey(Neuron, on_delete=models.PROTECT, related_name="claim_terms")
    role = models.CharField(max_length=16, choices=Role.choices)
    coefficient = models.FloatField(default=1.0)
    position = models.PositiveSmallIntegerField(default=0)  # order in the expression

    class Meta:
        ordering = ["revision", "position"]
        constraints = [
            models.UniqueConstraint(fields=["revision", "neuron"], name="term_unique_neuron"),
        ]

    def __str__(self) -> str:
        return f"{self.coefficient:g}*{self.neuron_id} ({self.role})"


class Review(models.Model):
    claim = models.ForeignKey(Claim, on_delete=models.CASCADE, related_name="reviews")
    revision = models.ForeignKey(ClaimRevision, on_delete=models.CASCADE, related_name="reviews")
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="reviews"
    )
    verdict = models.CharField(max_length=16, choices=Verdict.choices)
    reason = models.TextField()
    # A changed review keeps the old row with current=False: the history of a reviewer's mind.
    current = models.BooleanField(default=True)
    hidden = models.BooleanField(default=False)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["claim", "reviewer"],
                condition=Q(current=True),
                name="review_one_current_per_reviewer",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.verdict} of claim {self.claim_id} by {self.reviewer_id}"


class Comment(models.Model):
    claim = models.ForeignKey(Claim, on_delete=models.CASCADE, related_name="comments")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="claim_comments"
    )
    body = models.TextField()
    hidden = models.BooleanField(default=False)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created", "id"]

    def __str__(self) -> str:
        return f"comment {self.pk} on claim {self.claim_id}"


class Evidence(models.Model):
    """What the model itself says about one revision of a circuit claim.

    Computed by a worker (a render job of kind "evidence") with ``render.evidence``; a new
    revision gets new evidence, the old stays with its revision. ``params`` records what made
    it (seed, random draws, the images, the weights' sha256, the code version) and
    ``result`` is ``CircuitEvidence.to_dict()``.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "queued"
        RUNNING = "running", "running"
        DONE = "done", "done"
        FAILED = "failed", "failed"
        # Stored, not an error: e.g. the model's weights are not installed.
        UNAVAILABLE = "unavailable", "unavailable"

    revision = models.ForeignKey(ClaimRevision, on_delete=models.CASCADE, related_name="evidence")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.QUEUED)
    params = models.JSONField(default=dict, blank=True)
    result = models.JSONField(default=dict, blank=True)
    verdict = models.TextField(blank=True)
    # Why it failed or is unavailable, in words a person can act on.
    error = models.TextField(blank=True)
    job = models.ForeignKey(
        "jobs.RenderJob", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created = models.DateTimeField(auto_now_add=True)
    finished = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created", "-id"]
        verbose_name_plural = "evidence"

    def __str__(self) -> str:
        return f"evidence {self.pk} for {self.revision}"

    @property
    def is_active(self) -> bool:
        return self.status in (self.Status.QUEUED, self.Status.RUNNING)


class NeuronList(models.Model):
    """A researcher's named list of neurons ("curve detectors in 3b"), with a note per
    entry. Anyone may read it at its link; its owner edits it. Exports carry it by ``uid``."""

    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="neuron_lists"
    )
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True, max_length=5000)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated", "-id"]

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("annotations:list", args=[self.pk])


class ListEntry(models.Model):
    neuron_list = models.ForeignKey(NeuronList, on_delete=models.CASCADE, related_name="entries")
    neuron = models.ForeignKey(Neuron, on_delete=models.PROTECT, related_name="list_entries")
    note = models.TextField(blank=True, max_length=2000)
    added = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["added", "id"]
        constraints = [
            models.UniqueConstraint(fields=["neuron_list", "neuron"], name="list_entry_once")
        ]

    def __str__(self) -> str:
        return f"{self.neuron_list_id}: {self.neuron_id}"
