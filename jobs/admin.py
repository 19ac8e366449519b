from __future__ import annotations

from django.contrib import admin

from jobs.models import Artifact, RenderJob


@admin.register(Artifact)
class ArtifactAdmin(admin.ModelAdmin):
    list_display = ["kind", "neuron", "key", "created"]
    list_filter = ["kind", "layer__model"]
    list_select_related = ["neuron__layer__model"]
    raw_id_fields = ["layer", "neuron", "job"]
    search_fields = ["key"]


@admin.register(RenderJob)
class RenderJobAdmin(admin.ModelAdmin):
    list_display = ["pk", "kind", "model", "layer", "status", "progress_done", "progress_total"]
    list_filter = ["status", "kind", "model"]
    list_select_related = ["model", "layer"]
    raw_id_fields = ["layer"]
