"""Render jobs over the API: ask for what a neuron lacks (or for given kinds), poll the jobs."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import generics, permissions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse

from api.fields import Input, Text, Whole
from api.pagination import Cursor
from jobs import kinds, selectors
from jobs.lifecycle import render_job_cancel_by
from jobs.models import RenderJob
from jobs.params import FEATUREVIS_MAX
from jobs.planning import RenderPlan, render_request_neuron
from neurons.models import Neuron
from neurons.references import BadReference, find_model, resolve


class RenderJobSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    model = serializers.CharField(source="model.slug")
    layer = serializers.CharField(source="layer.name", allow_null=True, default=None)
    kind = serializers.ChoiceField(choices=kinds.choices())
    target = serializers.CharField(help_text="model/layer:channels it renders")
    channel_start = serializers.IntegerField()
    channel_stop = serializers.IntegerField(allow_null=True, help_text="null: to the last")
    params = serializers.DictField()
    status = serializers.ChoiceField(choices=RenderJob.Status.choices)
    done = serializers.IntegerField(source="progress_done")
    total = serializers.IntegerField(source="progress_total")
    note = serializers.CharField(
        source="progress_note", help_text="where it is now: 'channels 0-7: step 120 of 512'"
    )
    requested_by = serializers.CharField(
        source="requester", help_text="the username of who asked; empty: a command"
    )
    duration = serializers.FloatField(
        allow_null=True, help_text="seconds it ran (so far); null before it started"
    )
    error = serializers.CharField()
    attempts = serializers.IntegerField()
    created = serializers.DateTimeField()
    started = serializers.DateTimeField(allow_null=True)
    finished = serializers.DateTimeField(allow_null=True)
    api_url = serializers.SerializerMethodField()

    def get_api_url(self, job: RenderJob) -> str:
        return reverse("api-render-job", args=[job.pk], request=self.context["request"])


class RenderPlanSerializer(serializers.Serializer):
    jobs = RenderJobSerializer(many=True, help_text="created, or already queued for the same")
    existing = serializers.IntegerField(help_text="feature visualizations already rendered")
    missing = serializers.IntegerField(help_text="feature visualizations the jobs will render")


class RenderRequestInput(Input):
    neuron = Text(max_length=200, help_text="mobilenet_v2/features_3:12")
    kinds = serializers.ListField(
        child=serializers.ChoiceField(choices=kinds.choices(requestable=True)),
        required=False,
        allow_empty=False,
        max_length=len(kinds.names(requestable=True)),
        help_text="left out: whatever the neuron's page lacks. Dataset examples are swept for "
        "the whole layer at once.",
    )
    # Bounds for remote requests: a GPU is shared.
    steps = Whole(required=False, min_value=1, max_value=FEATUREVIS_MAX["steps"])
    size = Whole(required=False, min_value=16, max_value=FEATUREVIS_MAX["size"])
    seed = Whole(required=False, min_value=0, max_value=FEATUREVIS_MAX["seed"])

    def validate_neuron(self, text: str) -> Neuron:
        try:
            return resolve(text)
        except BadReference as exc:
            raise serializers.ValidationError(str(exc)) from None


class RenderJobFilter(serializers.Serializer):
    model = serializers.SlugField(required=False)
    status = serializers.ChoiceField(choices=RenderJob.Status.choices, required=False)


class RenderJobListApi(generics.GenericAPIView):
    pagination_class = Cursor

    @extend_schema(
        operation_id="render_jobs_list",
        parameters=[RenderJobFilter],
        responses=RenderJobSerializer(many=True),
    )
    def get(self, request: Request) -> Response:
        query = RenderJobFilter(data=request.query_params)
        query.is_valid(raise_exception=True)
        page = self.paginate_queryset(self._jobs(request.user, **query.validated_data))
        data = RenderJobSerializer(page, many=True, context={"request": request}).data
        return self.get_paginated_response(data)

    @staticmethod
    def _jobs(
        viewer: AbstractBaseUser | AnonymousUser,
        *,
        model: str | None = None,
        status: str | None = None,
    ) -> QuerySet[RenderJob]:
        jobs = selectors.render_job_list(viewer=viewer)
        if model:
            try:
                jobs = jobs.filter(model=find_model(model))
            except BadReference as exc:
                raise serializers.ValidationError({"model": [str(exc)]}) from None
        return jobs.filter(status=status) if status else jobs

    @extend_schema(
        operation_id="render_jobs_create",
        request=RenderRequestInput,
        responses={
            202: OpenApiResponse(RenderPlanSerializer, "queued (or joined) jobs to poll"),
        },
        examples=[
            OpenApiExample("What the neuron lacks", value={"neuron": "mobilenet_v2/features_3:12"}),
            OpenApiExample(
                "A quick feature visualization",
                value={
                    "neuron": "mobilenet_v2/features_3:12",
                    "kinds": ["featurevis"],
                    "steps": 64,
                    "size": 64,
                },
                request_only=True,
            ),
        ],
        description="Ask workers to render a neuron. Nothing is rendered twice: what exists "
        "is counted in `existing`, and a job already queued for the same is returned again.",
    )
    def post(self, request: Request) -> Response:
        data = RenderRequestInput(data=request.data)
        data.is_valid(raise_exception=True)
        plan = _render(requested_by=request.user, **data.validated_data)
        body = RenderPlanSerializer(plan, context={"request": request}).data
        return Response(body, status=status.HTTP_202_ACCEPTED)


# What the planner names that a request gives as its neuron.
_OF_THE_NEURON = frozenset({"model", "layer", "layers", "channels"})


def _render(
    *, neuron: Neuron, requested_by: Any, kinds: list[str] | None = None, **budget: Any
) -> RenderPlan:
    try:
        return render_request_neuron(
            neuron=neuron, kinds=kinds, featurevis=budget or None, requested_by=requested_by
        )
    except ValidationError as exc:
        if not hasattr(exc, "error_dict"):
            raise
        # The planner's "model" (no weights there) is this request's "neuron".
        errors: dict[str, list[str]] = {}
        for name, messages in exc.message_dict.items():
            errors.setdefault("neuron" if name in _OF_THE_NEURON else name, []).extend(messages)
        raise ValidationError(errors) from None


class RenderJobDetailApi(generics.GenericAPIView):
    @extend_schema(operation_id="render_jobs_retrieve", responses=RenderJobSerializer)
    def get(self, request: Request, job_id: int) -> Response:
        job = selectors.render_job_get(job_id=job_id, viewer=request.user)
        return Response(RenderJobSerializer(job, context={"request": request}).data)


class RenderJobCancelApi(generics.GenericAPIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(
        operation_id="render_jobs_cancel",
        request=None,
        responses={
            200: OpenApiResponse(RenderJobSerializer, "cancelled, or ended already"),
            403: OpenApiResponse(description="neither its requester nor staff"),
        },
        description="Cancel a queued or running job. Its worker stops at its next progress "
        "report (a feature visualization: within a step); what it rendered is kept, and "
        "asking again renders only the rest. Its requester, or staff, may cancel it. A job "
        "that had ended is returned as it is.",
    )
    def post(self, request: Request, job_id: int) -> Response:
        job = selectors.render_job_get(job_id=job_id, viewer=request.user)
        if render_job_cancel_by(job=job, user=request.user):  # refused: a 403 (api.errors)
            job = selectors.render_job_get(job_id=job_id, viewer=request.user)
        return Response(RenderJobSerializer(job, context={"request": request}).data)
