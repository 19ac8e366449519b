"""The read-only catalog API: models, layers and neurons, addressed the portable way
(model/layer/index). A neuron's item adds what it has been rendered as (feature
visualizations, dataset examples, histogram), its jobs, and where its claims are."""

from __future__ import annotations

import dataclasses
from urllib.parse import urlencode

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import generics, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse

from api.jobs import RenderJobSerializer
from jobs.atlas import coverage
from jobs.models import Artifact
from jobs.selectors import (
    Connections,
    Example,
    NeuronVisuals,
    neuron_thumbnails,
    neuron_visuals,
    neuron_weights,
)
from neurons import selectors
from neurons.labels import Label, labels_of
from neurons.models import Layer, Model, Neuron


class ModelSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField(help_text="canonical page")
    layers_url = serializers.SerializerMethodField()
    has_weights = serializers.BooleanField(read_only=True)
    layer_count = serializers.IntegerField(read_only=True)
    neuron_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = Model
        fields = [
            "slug",
            "title",
            "description",
            "input_size",
            "has_weights",
            "weights_sha256",
            "layer_count",
            "neuron_count",
            "url",
            "layers_url",
        ]

    def get_url(self, obj: Model) -> str:
        return self.context["request"].build_absolute_uri(obj.get_absolute_url())

    def get_layers_url(self, obj: Model) -> str:
        return self.context["request"].build_absolute_uri(f"/api/v1/models/{obj.slug}/layers/")


class LayerSerializer(serializers.ModelSerializer):
    model = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    url = serializers.SerializerMethodField(help_text="canonical page")
    neurons_url = serializers.SerializerMethodField()

    class Meta:
        model = Layer
        fields = [
            "model",
            "name",
            "alias",
            "position",
            "channels",
            "height",
            "width",
            "url",
            "neurons_url",
        ]

    def get_url(self, obj: Layer) -> str:
        return self.context["request"].build_absolute_uri(obj.get_absolute_url())

    def get_neurons_url(self, obj: Layer) -> str:
        path = f"/api/v1/models/{obj.model.slug}/layers/{obj.name}/neurons/"
        return self.context["request"].build_absolute_uri(path)


class NeuronSerializer(serializers.ModelSerializer):
    model = serializers.CharField(source="layer.model.slug", read_only=True)
    layer = serializers.CharField(source="layer.name", read_only=True)
    ref = serializers.CharField(read_only=True, help_text="portable reference")
    short_ref = serializers.CharField(read_only=True)
    url = serializers.SerializerMethodField(help_text="canonical page")
    api_url = serializers.SerializerMethodField()

    class Meta:
        model = Neuron
        fields = ["model", "layer", "index", "ref", "short_ref", "url", "api_url"]

    def get_url(self, obj: Neuron) -> str:
        return self.context["request"].build_absolute_uri(obj.get_absolute_url())

    def get_api_url(self, obj: Neuron) -> str:
        return self.context["request"].build_absolute_uri(_neuron_api_path(obj))


def _neuron_api_path(neuron: Neuron) -> str:
    return f"/api/v1/neurons/{neuron.layer.model.slug}/{neuron.layer.name}/{neuron.index}/"


class CoverageSerializer(serializers.Serializer):
    layer = serializers.CharField()
    alias = serializers.CharField()
    channels = serializers.IntegerField()
    height = serializers.IntegerField()
    width = serializers.IntegerField()
    examples = serializers.IntegerField(help_text="channels with dataset examples")
    preview = serializers.IntegerField(help_text="channels with a preview feature visualization")
    full = serializers.IntegerField(help_text="channels with a full feature visualization")


class ModelDetailSerializer(ModelSerializer):
    coverage = serializers.SerializerMethodField(
        help_text="per layer, what is rendered under the current weights"
    )

    class Meta(ModelSerializer.Meta):
        fields = [*ModelSerializer.Meta.fields, "coverage"]

    @extend_schema_field(CoverageSerializer(many=True))
    def get_coverage(self, obj: Model) -> list[dict[str, object]]:
        return [dataclasses.asdict(row) for row in coverage(model=obj)]


class ModelListApi(generics.ListAPIView):
    serializer_class = ModelSerializer

    def get_queryset(self) -> QuerySet[Model]:
        return selectors.model_list()


class ModelDetailApi(generics.RetrieveAPIView):
    serializer_class = ModelDetailSerializer

    def get_object(self) -> Model:
        return selectors.model_list().get(pk=selectors.model_get(slug=self.kwargs["model"]).pk)


class LayerListApi(generics.ListAPIView):
    serializer_class = LayerSerializer
    pagination_class = None  # a model has tens of layers, not thousands

    def get_queryset(self) -> QuerySet[Layer]:
        model = selectors.model_get(slug=self.kwargs["model"])
        return selectors.layer_list(model=model).select_related("model")


class NeuronListApi(generics.ListAPIView):
    serializer_class = NeuronSerializer

    def get_queryset(self) -> QuerySet[Neuron]:
        model = selectors.model_get(slug=self.kwargs["model"])
        return selectors.neuron_list(
            layer=selectors.layer_get(model=model, name=self.kwargs["layer"])
        )


class _NeuronItemApi(generics.RetrieveAPIView):
    def get_object(self) -> Neuron:
        return selectors.neuron_lookup(
            model=self.kwargs["model"], layer=self.kwargs["layer"], index=self.kwargs["index"]
        )


class ExampleSerializer(serializers.Serializer):
    url = serializers.CharField(help_text="the image, cropped as the layer sees it")
    image = serializers.CharField(help_text="the corpus image it comes from")
    value = serializers.FloatField(help_text="the activation")
    pos = serializers.ListField(child=serializers.IntegerField(), help_text="[y, x] of the max")


class HistogramSerializer(serializers.Serializer):
    counts = serializers.ListField(child=serializers.IntegerField())
    edges = serializers.ListField(child=serializers.FloatField())


class ImagesSerializer(serializers.Serializer):
    thumbnail = serializers.CharField(
        allow_null=True,
        help_text="its picture on grids and lists: the feature visualization, else the top "
        "dataset example's receptive-field crop; null: not rendered yet",
    )
    thumbnail_kind = serializers.ChoiceField(
        choices=["featurevis", "example"], allow_null=True, help_text="which of the two"
    )
    featurevis = serializers.CharField(allow_null=True, help_text="the channel's visualization")
    featurevis_tier = serializers.CharField(
        allow_null=True, help_text="its quality tier: preview, full or custom (the best there is)"
    )
    featurevis_neuron = serializers.CharField(allow_null=True, help_text="its centre neuron's")
    featurevis_negative = serializers.CharField(allow_null=True)
    featurevis_diversity = serializers.ListField(child=serializers.CharField())
    top_examples = ExampleSerializer(many=True)
    bottom_examples = ExampleSerializer(many=True)
    histogram = HistogramSerializer(allow_null=True, help_text="of the activations over the corpus")


class LabelSerializer(serializers.Serializer):
    text = serializers.CharField()
    status = serializers.CharField(help_text="of its claim: supported or proposed")
    url = serializers.CharField(help_text="its claim's page")


class LinkSerializer(serializers.Serializer):
    ref = serializers.CharField(help_text="the neuron at the other end, e.g. f11:44")
    label = LabelSerializer(allow_null=True, help_text="its current label")
    api_url = serializers.CharField(allow_null=True)
    channel = serializers.IntegerField()
    rank = serializers.IntegerField(help_text="1 = strongest")
    strength = serializers.FloatField(help_text="L2 norm of the expanded weights")
    sign = serializers.IntegerField(help_text="+1 raises the neuron on the data, -1 lowers it")
    skip = serializers.BooleanField(help_text="the namesake, also joined by an identity skip")


class ConnectionsSerializer(serializers.Serializer):
    layer = serializers.CharField(allow_null=True, help_text="the layer at the other end")
    computed = serializers.BooleanField()
    count = serializers.IntegerField(help_text="channels ranked")
    links = LinkSerializer(many=True)


class StrongestSerializer(serializers.Serializer):
    inputs = ConnectionsSerializer()
    outputs = ConnectionsSerializer()
    weights_missing = serializers.CharField()


class NeuronDetailSerializer(NeuronSerializer):
    label = serializers.SerializerMethodField(
        help_text="its current label: its best-supported feature claim, else its newest "
        "proposed one; null: none"
    )
    images = serializers.SerializerMethodField()
    connections = serializers.SerializerMethodField(
        help_text="strongest inputs and outputs by expanded weights, as the page shows them"
    )
    missing = serializers.ListField(
        child=serializers.CharField(), source="visuals.missing", help_text="not rendered yet"
    )
    cannot_render = serializers.CharField(
        source="visuals.cannot_render", help_text="why no render can be asked for, if so"
    )
    jobs = RenderJobSerializer(many=True, source="visuals.jobs", help_text="recent, covering it")
    claims_url = serializers.SerializerMethodField(help_text="claims involving this neuron")

    class Meta(NeuronSerializer.Meta):
        fields = [
            *NeuronSerializer.Meta.fields,
            "label",
            "images",
            "connections",
            "missing",
            "cannot_render",
            "jobs",
            "claims_url",
        ]

    def _absolute(self, url: str) -> str:
        return self.context["request"].build_absolute_uri(url)

    def _first(self, artifact: Artifact | None) -> str | None:
        urls = artifact.urls if artifact is not None else []
        return self._absolute(urls[0]) if urls else None

    def _examples(self, examples: list[Example]) -> list[dict[str, object]]:
        return [
            {"url": self._absolute(e.url), "image": e.image, "value": e.value, "pos": list(e.pos)}
            for e in examples
        ]

    def _label(self, label: Label | None) -> dict[str, str] | None:
        if label is None:
            return None
        return {"text": label.text, "status": label.status, "url": self._absolute(label.url)}

    @extend_schema_field(LabelSerializer(allow_null=True))
    def get_label(self, neuron: Neuron) -> dict[str, str] | None:
        return self._label(labels_of([neuron]).get(neuron.pk))

    @extend_schema_field(ImagesSerializer)
    def get_images(self, neuron: Neuron) -> dict[str, object]:
        visuals: NeuronVisuals = neuron.visuals
        histogram = visuals.examples.data.get("histogram") if visuals.examples else None
        thumbnail = neuron_thumbnails(neurons=[neuron]).get(neuron.pk)
        return {
            "thumbnail": self._absolute(thumbnail.url) if thumbnail else None,
            "thumbnail_kind": (
                None if not thumbnail else "example" if thumbnail.example else "featurevis"
            ),
            "featurevis": self._first(visuals.featurevis),
            "featurevis_tier": visuals.featurevis_tier or None,
            "featurevis_neuron": self._first(visuals.neuron),
            "featurevis_negative": self._first(visuals.negative),
            "featurevis_diversity": [
                self._absolute(url) for url in (visuals.diversity.urls if visuals.diversity else [])
            ],
            "top_examples": self._examples(visuals.top),
            "bottom_examples": self._examples(visuals.bottom),
            "histogram": (
                {"counts": histogram["counts"], "edges": histogram["edges"]} if histogram else None
            ),
        }

    @extend_schema_field(StrongestSerializer)
    def get_connections(self, neuron: Neuron) -> dict[str, object]:
        weights = neuron_weights(neuron=neuron)

        def side(connections: Connections) -> dict[str, object]:
            return {
                "layer": connections.layer.name if connections.layer is not None else None,
                "computed": connections.computed,
                "count": connections.count,
                "links": [
                    {
                        "ref": link.ref,
                        "label": self._label(link.label),
                        "api_url": (
                            self._absolute(_neuron_api_path(link.neuron)) if link.neuron else None
                        ),
                        "channel": link.channel,
                        "rank": link.rank,
                        "strength": link.strength,
                        "sign": link.sign,
                        "skip": link.skip,
                    }
                    for link in connections.links
                ],
            }

        return {
            "inputs": side(weights.inputs),
            "outputs": side(weights.outputs),
            "weights_missing": weights.weights_missing,
        }

    def get_claims_url(self, neuron: Neuron) -> str:
        url = reverse("api-claim-list", request=self.context["request"])
        return f"{url}?{urlencode({'neuron': neuron.ref})}"


class NeuronDetailApi(_NeuronItemApi):
    serializer_class = NeuronDetailSerializer

    @extend_schema(operation_id="neuron_retrieve", responses=NeuronDetailSerializer)
    def get(self, request: Request, *args: object, **kwargs: object) -> Response:
        neuron = self.get_object()
        neuron.visuals = neuron_visuals(neuron=neuron)
        return Response(self.get_serializer(neuron).data)
