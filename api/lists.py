"""Lists of neurons over the API: anyone reads them, their owner writes them. The
services' refusals (ValidationError, PermissionDenied) become 400 and 403 in
``api.errors.exception_handler``."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse

from annotations import lists
from annotations.models import NeuronList
from api.catalog import _neuron_api_path
from api.fields import Input, Text
from neurons.references import BadReference, resolve


class EntrySerializer(Input):
    neuron = Text(help_text="inceptionv1/4c:447")
    note = Text(
        allow_blank=True,
        max_length=2000,
        required=False,
        help_text="left out: a neuron already in the list keeps its note",
    )
    api_url = Text(read_only=True, help_text="the neuron's")
    added = serializers.DateTimeField(read_only=True)


class ListSerializer(Input):
    id = serializers.IntegerField(read_only=True)
    uid = serializers.UUIDField(read_only=True, help_text="the same on every instance")
    title = Text(max_length=200)
    description = Text(allow_blank=True, max_length=5000, required=False, default="")
    owner = Text(read_only=True)
    entries = EntrySerializer(many=True, read_only=True)
    updated = serializers.DateTimeField(read_only=True)
    url = Text(read_only=True, help_text="its page, to share")
    api_url = Text(read_only=True)


def _body(request: Request, neuron_list: NeuronList) -> dict[str, Any]:
    absolute = request.build_absolute_uri
    return {
        "id": neuron_list.pk,
        "uid": neuron_list.uid,
        "title": neuron_list.title,
        "description": neuron_list.description,
        "owner": neuron_list.owner.get_username(),
        "entries": [
            {
                "neuron": entry.neuron.ref,
                "note": entry.note,
                "api_url": absolute(_neuron_api_path(entry.neuron)),
                "added": entry.added,
            }
            for entry in lists.entries(neuron_list=neuron_list)
        ],
        "updated": neuron_list.updated,
        "url": absolute(neuron_list.get_absolute_url()),
        "api_url": reverse("api-list", args=[neuron_list.pk], request=request),
    }


class ListListApi(generics.GenericAPIView):
    pagination_class = None  # the 50 most recently updated

    @extend_schema(operation_id="lists_list", responses=ListSerializer(many=True))
    def get(self, request: Request) -> Response:
        """The 50 most recently updated lists, or ``?owner=<username>``'s."""
        found = lists.lists_recent(limit=None)
        owner = request.query_params.get("owner")
        if owner:
            found = found.filter(owner__username=owner[:150])
        return Response([_body(request, neuron_list) for neuron_list in found[:50]])

    @extend_schema(
        operation_id="lists_create", request=ListSerializer, responses={201: ListSerializer}
    )
    def post(self, request: Request) -> Response:
        data = ListSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        created = lists.list_create(owner=request.user, **data.validated_data)
        return Response(_body(request, created), status=status.HTTP_201_CREATED)


class ListDetailApi(generics.GenericAPIView):
    @extend_schema(operation_id="lists_retrieve", responses=ListSerializer)
    def get(self, request: Request, pk: int) -> Response:
        return Response(_body(request, lists.list_get(pk=pk)))

    @extend_schema(operation_id="lists_update", request=ListSerializer, responses=ListSerializer)
    def patch(self, request: Request, pk: int) -> Response:
        neuron_list = lists.list_get(pk=pk)
        data = ListSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        fields = {k: v for k, v in data.validated_data.items() if k in ("title", "description")}
        lists.list_edit(neuron_list=neuron_list, editor=request.user, **fields)
        return Response(_body(request, lists.list_get(pk=pk)))

    @extend_schema(operation_id="lists_destroy", responses={204: None})
    def delete(self, request: Request, pk: int) -> Response:
        neuron_list = lists.list_get(pk=pk)
        lists.list_delete(neuron_list=neuron_list, editor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class EntryRemoveInput(Input):
    neuron = Text(max_length=200, help_text="inceptionv1/4c:447")


def _neuron(text: str) -> Any:
    try:
        return resolve(text)
    except BadReference as exc:
        raise serializers.ValidationError({"neuron": [str(exc)]}) from None


class ListEntriesApi(generics.GenericAPIView):
    @extend_schema(
        operation_id="lists_entries_add",
        request=EntrySerializer,
        responses={201: ListSerializer},
        description="Add a neuron with a note (or change the note of one already in it).",
    )
    def post(self, request: Request, pk: int) -> Response:
        neuron_list = lists.list_get(pk=pk)
        data = EntrySerializer(data=request.data)
        data.is_valid(raise_exception=True)
        neuron = _neuron(data.validated_data["neuron"])
        note = data.validated_data.get("note")
        lists.entry_add(neuron_list=neuron_list, editor=request.user, neuron=neuron, note=note)
        return Response(_body(request, lists.list_get(pk=pk)), status=status.HTTP_201_CREATED)


class ListEntryRemoveApi(generics.GenericAPIView):
    @extend_schema(
        operation_id="lists_entries_remove", request=EntryRemoveInput, responses=ListSerializer
    )
    def post(self, request: Request, pk: int) -> Response:
        neuron_list = lists.list_get(pk=pk)
        data = EntryRemoveInput(data=request.data)
        data.is_valid(raise_exception=True)
        neuron = _neuron(data.validated_data["neuron"])
        lists.entry_remove(neuron_list=neuron_list, editor=request.user, neuron=neuron)
        return Response(_body(request, lists.list_get(pk=pk)))
