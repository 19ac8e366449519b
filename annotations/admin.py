"""Admin: read, and moderate through the services (hide, show); history is never edited."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from annotations.models import Claim, ClaimRevision, Comment, Evidence, Review
from annotations.services import content_hide


@admin.action(description="Hide selected (staff moderation)")
def hide(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Any]) -> None:
    for content in queryset:
        content_hide(moderator=request.user, content=content, hidden=True)


@admin.action(description="Show selected again")
def show(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Any]) -> None:
    for content in queryset:
        content_hide(moderator=request.user, content=content, hidden=False)


class ReadOnly(admin.ModelAdmin):
    actions = [hide, show]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [field.name for field in self.model._meta.fields]


@admin.register(Claim)
class ClaimAdmin(ReadOnly):
    list_display = ["pk", "kind", "target", "author", "status", "retracted", "hidden", "created"]
    list_filter = ["status", "kind", "hidden", "retracted"]
    list_select_related = ["target__layer__model", "author"]


@admin.register(ClaimRevision)
class ClaimRevisionAdmin(ReadOnly):
    actions = []
    list_display = ["claim", "number", "label", "author", "created"]
    list_select_related = ["author"]


@admin.register(Review)
class ReviewAdmin(ReadOnly):
    list_display = ["claim", "reviewer", "verdict", "current", "hidden", "created"]
    list_filter = ["verdict", "current", "hidden"]
    list_select_related = ["reviewer"]


@admin.register(Comment)
class CommentAdmin(ReadOnly):
    list_display = ["claim", "author", "hidden", "created"]
    list_filter = ["hidden"]
    list_select_related = ["author"]


@admin.register(Evidence)
class EvidenceAdmin(ReadOnly):
    actions = []
    list_display = ["pk", "revision", "status", "verdict", "created", "finished"]
    list_filter = ["status"]
    list_select_related = ["revision"]
