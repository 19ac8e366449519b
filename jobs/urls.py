from __future__ import annotations

from django.urls import path

from jobs import views

app_name = "jobs"

urlpatterns = [
    path(
        "models/<slug:model>/<str:layer>/<int:index>/render/",
        views.neuron_render,
        name="neuron_render",
    ),
    path("jobs/", views.job_list, name="job_list"),
    path("explore/", views.explore, name="explore"),
    path("explore/<int:pk>/", views.exploration, name="exploration"),
    path("explore/uploads/<int:pk>/delete/", views.upload_remove, name="upload_delete"),
    path("jobs/status/", views.job_statuses, name="job_statuses"),
    path("jobs/<int:job_id>/status/", views.job_status, name="job_status"),
    path("jobs/<int:job_id>/cancel/", views.job_cancel, name="job_cancel"),
]
