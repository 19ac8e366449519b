from __future__ import annotations

from django.urls import path

from api import catalog
from neurons import api

urlpatterns = [
    path("models/", api.ModelListApi.as_view(), name="api-model-list"),
    path("models/<slug:model>/", api.ModelDetailApi.as_view(), name="api-model"),
    path("models/<slug:model>/layers/", api.LayerListApi.as_view(), name="api-layer-list"),
    path(
        "models/<slug:model>/layers/<str:layer>/neurons/",
        api.NeuronListApi.as_view(),
        name="api-neuron-list",
    ),
    path(
        "neurons/<slug:model>/<str:layer>/<int:index>/",
        # The catalog's fields plus images, jobs and claims (api/catalog.py composes them).
        catalog.NeuronDetailApi.as_view(),
        name="api-neuron",
    ),
]
