"""Pages and endpoints for renders: ask for what a neuron lacks, follow the jobs."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from jobs import selectors
from jobs.planning import render_request_neuron
from neurons import selectors as catalog


@login_required
@require_POST
def neuron_render(request: HttpRequest, model: str, layer: str, index: int) -> HttpResponse:
    """The neuron page's button: queue what the page lacks, then back to the page."""
    neuron = catalog.neuron_lookup(model=model, layer=layer, index=index)
    try:
        plan = render_request_neuron(neuron=neuron)
    except ValidationError as exc:
        context = {"neuron": neuron, "errors": exc.message_dict}
        return render(request, "jobs/render_refused.html", context, status=400)
    if plan.jobs:
        messages.info(request, f"Queued: {', '.join(job.kind_label for job in plan.jobs)}.")
    else:
        messages.info(request, "Nothing is missing.")
    return redirect(neuron)


@require_GET
def job_status(request: HttpRequest, job_id: int) -> JsonResponse:
    """A job's status as JSON, for the pages' poll and for scripts."""
    return JsonResponse(selectors.render_job_get(job_id=job_id).as_status())


@require_GET
def job_list(request: HttpRequest) -> HttpResponse:
    jobs = selectors.render_job_list()[:100]
    return render(request, "jobs/job_list.html", {"jobs": jobs})
