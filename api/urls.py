"""Pages of the api app (not under /api/: those are in api/urls_v1.py)."""

from __future__ import annotations

from django.urls import path

from api import views

app_name = "api"

urlpatterns = [
    path("account/tokens/", views.token_list, name="token_list"),
    path("account/tokens/<int:token_id>/revoke/", views.token_revoke, name="token_revoke"),
]
