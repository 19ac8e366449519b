from __future__ import annotations

from django.urls import path

from annotations import views
from annotations.feeds import ModelClaimsFeed

app_name = "annotations"

urlpatterns = [
    path("search/", views.search, name="search"),
    path("lists/", views.list_index, name="lists"),
    path("lists/new/", views.list_new, name="list_new"),
    path("lists/add/", views.list_add_any, name="list_add_any"),
    path("lists/<int:pk>/", views.list_detail, name="list"),
    path("lists/<int:pk>/add/", views.list_add, name="list_add"),
    path("lists/<int:pk>/remove/", views.list_remove, name="list_remove"),
    path("lists/<int:pk>/edit/", views.list_edit, name="list_edit"),
    path("models/<slug:model>/claims.atom", ModelClaimsFeed(), name="model_feed"),
    path("claims/", views.claim_list, name="claim_list"),
    path("claims/new/", views.claim_create, name="claim_create"),
    path("claims/preview/", views.expression_preview, name="expression_preview"),
    path("claims/<int:pk>/", views.claim_detail, name="claim"),
    path("claims/<int:pk>/edit/", views.claim_edit, name="claim_edit"),
    path("claims/<int:pk>/retract/", views.claim_retract, name="claim_retract"),
    path("claims/<int:pk>/evidence/", views.claim_evidence, name="claim_evidence"),
    path("claims/<int:pk>/review/", views.claim_review, name="claim_review"),
    path("claims/<int:pk>/comment/", views.comment_create, name="comment_create"),
    path("claims/<int:pk>/hide/", views.claim_hide, name="claim_hide"),
    path("claims/reviews/<int:pk>/hide/", views.review_hide, name="review_hide"),
    path("claims/comments/<int:pk>/hide/", views.comment_hide, name="comment_hide"),
]
