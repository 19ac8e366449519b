"""The site's pages: every URL but the API's (``microscope.urls`` adds those).

Requests outside /api/ resolve here (``microscope.middleware.pages_urlconf``), so a web
process loads DRF and the API's modules on its first API request, not before its first page.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import admin
from django.urls import include, path, re_path
from django.views.static import serve

from microscope import views

urlpatterns = [
    path("", views.home, name="home"),
    path("", include("neurons.urls")),
    path("", include("jobs.urls")),
    path("", include("annotations.urls")),
    path("", include("people.urls")),
    path("", include("api.urls")),
    path("admin/", admin.site.urls),
    # Media from disk, for the embedded default; production serves it from object storage.
    re_path(r"^media/(?P<path>.*)$", serve, {"document_root": settings.MEDIA_ROOT}),
]

# JSON errors under /api/, the usual pages elsewhere.
handler400 = "api.handlers.bad_request"
handler403 = "api.handlers.permission_denied"
handler404 = "api.handlers.page_not_found"
handler500 = "api.handlers.server_error"
