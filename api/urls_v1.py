"""API v1, mounted at /api/v1/."""

from __future__ import annotations

from django.urls import path

from api import catalog, claims, evidence, exchange, explore, jobs, lists, me

urlpatterns = [
    path("models/", catalog.ModelListApi.as_view(), name="api-model-list"),
    path("models/<slug:model>/", catalog.ModelDetailApi.as_view(), name="api-model"),
    path("models/<slug:model>/layers/", catalog.LayerListApi.as_view(), name="api-layer-list"),
    path(
        "models/<slug:model>/layers/<str:layer>/neurons/",
        catalog.NeuronListApi.as_view(),
        name="api-neuron-list",
    ),
    path(
        "neurons/<slug:model>/<str:layer>/<int:index>/",
        catalog.NeuronDetailApi.as_view(),
        name="api-neuron",
    ),
    path("me/", me.MeApi.as_view(), name="api-me"),
    path("claims/", claims.ClaimListApi.as_view(), name="api-claim-list"),
    path("claims/<int:pk>/", claims.ClaimDetailApi.as_view(), name="api-claim"),
    path("claims/<int:pk>/retract/", claims.ClaimRetractApi.as_view(), name="api-claim-retract"),
    path(
        "claims/<int:pk>/revisions/",
        claims.RevisionListApi.as_view(),
        name="api-claim-revision-list",
    ),
    path(
        "claims/<int:pk>/revisions/<int:number>/",
        claims.RevisionDetailApi.as_view(),
        name="api-claim-revision",
    ),
    path("claims/<int:pk>/reviews/", claims.ReviewListApi.as_view(), name="api-claim-reviews"),
    path("claims/<int:pk>/comments/", claims.CommentListApi.as_view(), name="api-claim-comments"),
    path(
        "claims/<int:pk>/evidence/", evidence.ClaimEvidenceApi.as_view(), name="api-claim-evidence"
    ),
    path("render-jobs/", jobs.RenderJobListApi.as_view(), name="api-render-job-list"),
    path("render-jobs/<int:job_id>/", jobs.RenderJobDetailApi.as_view(), name="api-render-job"),
    path(
        "render-jobs/<int:job_id>/cancel/",
        jobs.RenderJobCancelApi.as_view(),
        name="api-render-job-cancel",
    ),
    path("explorations/", explore.ExplorationListApi.as_view(), name="api-exploration-list"),
    path("explorations/<int:pk>/", explore.ExplorationDetailApi.as_view(), name="api-exploration"),
    path("lists/", lists.ListListApi.as_view(), name="api-list-list"),
    path("lists/<int:pk>/", lists.ListDetailApi.as_view(), name="api-list"),
    path("lists/<int:pk>/entries/", lists.ListEntriesApi.as_view(), name="api-list-entries"),
    path(
        "lists/<int:pk>/entries/remove/",
        lists.ListEntryRemoveApi.as_view(),
        name="api-list-entry-remove",
    ),
    path("export/", exchange.ExportApi.as_view(), name="api-export"),
    path("import/", exchange.ImportApi.as_view(), name="api-import"),
]
