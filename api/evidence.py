"""A circuit claim's evidence from the model over the API: ``GET /api/v1/claims/<id>/evidence/``.

Read-only: evidence is computed by workers when a circuit claim is posted or revised.
"""

from __future__ import annotations

from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse

from annotations import selectors
from annotations.models import Evidence, Kind
from neurons.validation import whole_number


class EvidenceSerializer(serializers.Serializer):
    claim = serializers.IntegerField(source="revision.claim_id")
    revision = serializers.IntegerField(source="revision.number")
    status = serializers.ChoiceField(
        choices=Evidence.Status.choices,
        help_text="queued, running, done, failed, or unavailable (e.g. weights missing)",
    )
    verdict = serializers.CharField(help_text="one sentence a person reads first")
    error = serializers.CharField(help_text="why it failed or is unavailable")
    params = serializers.DictField(
        help_text="what made it: seed, random_draws, reduce, images, weights_sha256, "
        "code_version, corpus"
    )
    result = serializers.DictField(
        help_text="connections (strength, sign, rank, percentile per component), ablation "
        "(drop_all, drop_each, random baseline), sufficiency (r2, r2_claimed); see "
        "render.evidence.CircuitEvidence"
    )
    job = serializers.SerializerMethodField(help_text="the render job that computes it")
    created = serializers.DateTimeField()
    finished = serializers.DateTimeField(allow_null=True)

    def get_job(self, evidence: Evidence) -> str | None:
        if evidence.job_id is None:
            return None
        return reverse("api-render-job", args=[evidence.job_id], request=self.context["request"])


class ClaimEvidenceApi(generics.GenericAPIView):
    @extend_schema(
        operation_id="claims_evidence_retrieve",
        parameters=[
            OpenApiParameter(
                "revision", int, description="a revision number (default: the current one)"
            )
        ],
        responses=EvidenceSerializer,
    )
    def get(self, request: Request, pk: int) -> Response:
        claim = selectors.claim_visible_get(pk=pk, viewer=request.user)
        if claim.kind != Kind.CIRCUIT:
            raise Http404(f"claim {pk} is a feature claim: only circuit claims have evidence")
        number = request.query_params.get("revision", "").strip()
        if number:
            if (asked := whole_number(number)) is None:
                raise serializers.ValidationError({"revision": ["a revision number, e.g. 2"]})
            revision = claim.revisions.filter(number=asked).first()
            if revision is None:
                raise Http404(f"claim {pk} has no revision {number}")
        else:
            revision = claim.current_revision
        evidence = selectors.evidence_latest(revision=revision)
        if evidence is None:
            raise Http404(f"no evidence was computed for revision {revision.number} of claim {pk}")
        evidence.revision = revision
        return Response(EvidenceSerializer(evidence, context={"request": request}).data)
