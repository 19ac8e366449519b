"""Explorations over the API: send an image (or name a corpus image), poll, read which
channels of every layer fire on it. Each is shown to its uploader (and staff) only; its
image file sits at an address nobody can guess."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import generics, permissions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse

from api.catalog import _neuron_api_path
from api.fields import Input, Slug, Text
from api.parsers import FormParser, JSONParser, MultiPartParser
from jobs.explore import exploration_get, exploration_request, upload_delete
from jobs.models import Exploration
from jobs.selectors import exploration_page
from jobs.uploads import upload_read
from neurons.references import BadReference, find_model


class ExplorationInput(Input):
    model = Slug(help_text="mobilenet_v2")
    image = serializers.FileField(
        required=False, help_text="JPEG, PNG or WebP (multipart); or name a corpus_image"
    )
    corpus_image = Text(
        required=False, allow_blank=True, max_length=200, help_text="a corpus image's name"
    )


class FiredSerializer(serializers.Serializer):
    channel = serializers.IntegerField()
    ref = serializers.CharField(help_text="mobilenet_v2/f10:3")
    api_url = serializers.CharField(allow_null=True)
    peak = serializers.FloatField(help_text="its highest activation on the image")
    heatmap = serializers.CharField(
        help_text="where it fires: a PNG data: URI (alpha: up to its peak)"
    )
    thumbnail = serializers.CharField(allow_null=True)
    label = serializers.CharField(allow_null=True)


class ExplorationLayerSerializer(serializers.Serializer):
    layer = serializers.CharField()
    alias = serializers.CharField()
    channels = FiredSerializer(many=True)


class ExplorationSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    model = serializers.CharField()
    image = serializers.CharField(help_text="the stored image (upright, RGB, no metadata)")
    status = serializers.ChoiceField(choices=["queued", "running", "done", "failed", "cancelled"])
    error = serializers.CharField()
    layers = ExplorationLayerSerializer(
        many=True, help_text="empty until done, and in lists (read the item)"
    )
    api_url = serializers.CharField()


def _body(request: Request, exploration: Exploration, *, layers: bool = True) -> dict[str, Any]:
    absolute = request.build_absolute_uri
    found: list[dict[str, Any]] = []
    if exploration.result and layers:
        page = exploration_page(exploration)
        for row in page["rows"]:
            channels = []
            for f in row["fired"]:
                neuron = f.neuron
                channels.append(
                    {
                        "channel": f.channel,
                        "ref": neuron.ref if neuron else f"{row['alias']}:{f.channel}",
                        "api_url": absolute(_neuron_api_path(neuron)) if neuron else None,
                        "peak": f.peak,
                        "heatmap": f.heatmap,
                        "thumbnail": absolute(f.thumbnail.url) if f.thumbnail else None,
                        "label": f.label.text if f.label else None,
                    }
                )
            name = row["layer"].name if row["layer"] else row["alias"]
            found.append({"layer": name, "alias": row["alias"], "channels": channels})
    job = exploration.job
    return {
        "id": exploration.pk,
        "model": exploration.model.slug,
        "image": absolute(exploration.upload.url),
        "status": exploration.status,
        "error": job.error if job is not None and not exploration.result else "",
        "layers": found,
        "api_url": reverse("api-exploration", args=[exploration.pk], request=request),
    }


class ExplorationListApi(generics.GenericAPIView):
    permission_classes = [permissions.IsAuthenticated]
    pagination_class = None  # the newest 100
    parser_classes = [MultiPartParser, FormParser, JSONParser]

    @extend_schema(
        operation_id="explorations_create",
        request={"multipart/form-data": ExplorationInput, "application/json": ExplorationInput},
        responses={202: OpenApiResponse(ExplorationSerializer, "queued (or done already)")},
        examples=[
            OpenApiExample(
                "A corpus image",
                value={"model": "mobilenet_v2", "corpus_image": "0001.jpg"},
                request_only=True,
            )
        ],
        description="Which channels of every significant layer fire on an image. Send the "
        "image as multipart `image` (JPEG, PNG or WebP; checked by its content, at most "
        "MICROSCOPE_UPLOAD_MAX_BYTES and MICROSCOPE_UPLOAD_MAX_PIXELS), or name a "
        "`corpus_image`; then poll `api_url` until `status` is done. The same image and "
        "model give the same exploration.",
    )
    def post(self, request: Request) -> Response:
        data = ExplorationInput(data=request.data)
        data.is_valid(raise_exception=True)
        fields = data.validated_data
        try:
            model = find_model(fields["model"])
        except BadReference as exc:
            raise serializers.ValidationError({"model": [str(exc)]}) from None
        image = fields.get("image")
        exploration = exploration_request(  # its ValidationError: a 400 (api.errors)
            owner=request.user,
            model=model,
            data=upload_read(image) if image is not None else None,
            name=image.name if image is not None else "",
            corpus_image=fields.get("corpus_image", ""),
        )
        return Response(_body(request, exploration), status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        operation_id="explorations_list",
        responses=ExplorationSerializer(many=True),
        description="Your newest 100 explorations, without their layers (read each one's "
        "`api_url` for them).",
    )
    def get(self, request: Request) -> Response:
        found = Exploration.objects.filter(upload__owner=request.user).select_related(
            "upload", "model", "job"
        )[:100]
        return Response([_body(request, exploration, layers=False) for exploration in found])


class ExplorationDetailApi(generics.GenericAPIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(operation_id="explorations_retrieve", responses=ExplorationSerializer)
    def get(self, request: Request, pk: int) -> Response:
        return Response(_body(request, exploration_get(pk=pk, viewer=request.user)))

    @extend_schema(
        operation_id="explorations_destroy",
        responses={204: None},
        description="Delete the exploration's image and every exploration of it.",
    )
    def delete(self, request: Request, pk: int) -> Response:
        exploration = exploration_get(pk=pk, viewer=request.user)
        upload_delete(upload=exploration.upload, viewer=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)
