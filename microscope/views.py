"""The landing page: what happened lately, and how far each model is visualized."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from annotations import activity
from jobs.atlas import coverage
from neurons.selectors import model_list


@require_safe
def home(request: HttpRequest) -> HttpResponse:
    models = []
    for model in model_list():
        rows = coverage(model=model)
        totals = {
            name: sum(getattr(row, name) for row in rows)
            for name in ("channels", "examples", "preview", "full")
        }
        models.append((model, totals))
    context = {
        "models": models,
        "claims": activity.recent_claims(),
        "reviews": activity.recent_reviews(),
        "evidence": activity.recent_evidence(),
        "disputed": activity.most_disputed(),
    }
    return render(request, "microscope/home.html", context)
