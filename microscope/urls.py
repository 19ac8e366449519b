"""Every URL (``ROOT_URLCONF``): the API under /api/, then the pages of ``page_urls``."""

from __future__ import annotations

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from api import schema  # noqa: F401  (registers the token auth scheme with the schema)
from microscope import page_urls
from microscope.page_urls import handler400, handler403, handler404, handler500

__all__ = ["handler400", "handler403", "handler404", "handler500", "urlpatterns"]

urlpatterns = [
    path("api/v1/", include("api.urls_v1")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    *page_urls.urlpatterns,
]
