"""Read-only catalog API. Neurons are addressed the portable way: model/layer/index."""

from __future__ import annotations

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers
from rest_framework.request import Request

from neurons import selectors
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
        path = f"/api/v1/neurons/{obj.layer.model.slug}/{obj.layer.name}/{obj.index}/"
        return self.context["request"].build_absolute_uri(path)


class ModelListApi(generics.ListAPIView):
    serializer_class = ModelSerializer

    def get_queryset(self) -> QuerySet[Model]:
        return selectors.model_list()


class ModelDetailApi(generics.RetrieveAPIView):
    serializer_class = ModelSerializer

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


class NeuronDetailApi(generics.RetrieveAPIView):
    serializer_class = NeuronSerializer

    @extend_schema(operation_id="neuron_retrieve")
    def get(self, request: Request, *args: object, **kwargs: object) -> object:
        return super().get(request, *args, **kwargs)

    def get_object(self) -> Neuron:
        return selectors.neuron_lookup(
            model=self.kwargs["model"], layer=self.kwargs["layer"], index=self.kwargs["index"]
        )
