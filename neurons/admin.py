from __future__ import annotations

from django.contrib import admin

from neurons.models import Layer, Model, Neuron


@admin.register(Model)
class ModelAdmin(admin.ModelAdmin):
    list_display = ["slug", "title", "weights_sha256"]


@admin.register(Layer)
class LayerAdmin(admin.ModelAdmin):
    list_display = ["model", "name", "alias", "channels", "height", "width"]
    list_filter = ["model"]


@admin.register(Neuron)
class NeuronAdmin(admin.ModelAdmin):
    list_display = ["layer", "index"]
    list_filter = ["layer__model"]
    list_select_related = ["layer__model"]
