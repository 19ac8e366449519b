from __future__ import annotations

from django.apps import AppConfig


class NeuronsConfig(AppConfig):
    name = "neurons"
    verbose_name = "Catalog"
