"""The neuron item of the API: the catalog's fields plus what it has been rendered as (feature
visualizations, dataset examples, histogram), its jobs, and where its claims are."""

from __future__ import annotations

from urllib.parse import urlencode

from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse

from api.jobs import RenderJobSerializer
from jobs.models import Artifact
from jobs.selectors import Example, NeuronVisuals, neuron_visuals
from neurons.api import NeuronDetailApi as CatalogNeuronDetailApi
from neurons.api import NeuronSerializer
from neurons.models import Neuron


class ExampleSerializer(serializers.Serializer):
    url = serializers.CharField(help_text="the image, cropped as the layer sees it")
    image = serializers.CharField(help_text="the corpus image it comes from")
    value = serializers.FloatField(help_text="the activation")
    pos = serializers.ListField(child=serializers.IntegerField(), help_text="[y, x] of the max")


class HistogramSerializer(serializers.Serializer):
    counts = serializers.ListField(child=serializers.IntegerField())
    edges = serializers.ListField(child=serializers.FloatField())


class ImagesSerializer(serializers.Serializer):
    featurevis = serializers.CharField(allow_null=True, help_text="the channel's visualization")
    featurevis_neuron = serializers.CharField(allow_null=True, help_text="its centre neuron's")
    featurevis_negative = serializers.CharField(allow_null=True)
    featurevis_diversity = serializers.ListField(child=serializers.CharField())
    top_examples = ExampleSerializer(many=True)
    bottom_examples = ExampleSerializer(many=True)
    histogram = HistogramSerializer(allow_null=True, help_text="of the activations over the corpus")


class NeuronDetailSerializer(NeuronSerializer):
    images = serializers.SerializerMethodField()
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
            "images",
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

    @extend_schema_field(ImagesSerializer)
    def get_images(self, neuron: Neuron) -> dict[str, object]:
        visuals: NeuronVisuals = neuron.visuals
        histogram = visuals.examples.data.get("histogram") if visuals.examples else None
        return {
            "featurevis": self._first(visuals.featurevis),
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

    def get_claims_url(self, neuron: Neuron) -> str:
        url = reverse("api-claim-list", request=self.context["request"])
        return f"{url}?{urlencode({'neuron': neuron.ref})}"


class NeuronDetailApi(CatalogNeuronDetailApi):
    serializer_class = NeuronDetailSerializer

    @extend_schema(operation_id="neuron_retrieve", responses=NeuronDetailSerializer)
    def get(self, request: Request, *args: object, **kwargs: object) -> Response:
        neuron = self.get_object()
        neuron.visuals = neuron_visuals(neuron=neuron)
        return Response(self.get_serializer(neuron).data)
