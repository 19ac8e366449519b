from __future__ import annotations

from django.conf import settings
from django.contrib import admin
from django.urls import include, path, re_path
from django.views.static import serve
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from microscope import views

urlpatterns = [
    path("", views.home, name="home"),
    path("", include("neurons.urls")),
    path("", include("jobs.urls")),
    path("", include("annotations.urls")),
    path("", include("people.urls")),
    path("api/v1/", include("api.urls_v1")),
    path("", include("api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("admin/", admin.site.urls),
    # Media from disk, for the embedded default; production serves it from object storage.
    re_path(r"^media/(?P<path>.*)$", serve, {"document_root": settings.MEDIA_ROOT}),
]

# JSON errors under /api/, the usual pages elsewhere.
handler400 = "api.errors.bad_request"
handler403 = "api.errors.permission_denied"
handler404 = "api.errors.page_not_found"
handler500 = "api.errors.server_error"
