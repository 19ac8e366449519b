from __future__ import annotations

from django.urls import path, re_path

from neurons import views

app_name = "neurons"

urlpatterns = [
    path("models/", views.model_list, name="model_list"),
    path("models/<slug:model>/", views.model_detail, name="model"),
    path("models/<slug:model>/<str:layer>/", views.layer_detail, name="layer"),
    path("models/<slug:model>/<str:layer>/<int:index>/", views.neuron_detail, name="neuron"),
    # OpenAI Microscope's links have no trailing slash: /models/inceptionv1/mixed4c_0/447
    re_path(
        r"^models/(?P<model>[-\w]+)/(?P<layer>[^/]+)/(?P<index>[0-9]+)$",
        views.legacy_neuron,
    ),
    path("n/", views.short_link, name="short_link_query"),
    path("n/<path:ref>", views.short_link, name="short_link"),
]
