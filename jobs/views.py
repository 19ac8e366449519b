"""Pages and endpoints for renders: ask for what a neuron lacks, follow the jobs."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST, require_safe

from jobs import selectors
from jobs.explore import corpus_images, exploration_get, exploration_request, upload_delete
from jobs.lifecycle import render_job_cancel_by
from jobs.models import OBJECTIVE_BY_KIND, ArtifactKind, Upload
from jobs.planning import FEATUREVIS_KINDS, render_request_neuron
from jobs.selectors import exploration_page
from jobs.uploads import upload_read
from neurons import selectors as catalog
from neurons.validation import page_of, repeatable, whole_number


@login_required
@require_POST
def neuron_render(request: HttpRequest, model: str, layer: str, index: int) -> HttpResponse:
    """The neuron page's buttons: queue what the page lacks, or one objective's feature
    visualization (``kind``), then back to the page."""
    neuron = catalog.neuron_lookup(model=model, layer=layer, index=index)
    kind = request.POST.get("kind", "")
    try:
        if kind and kind not in FEATUREVIS_KINDS:
            choices = ", ".join(FEATUREVIS_KINDS)
            raise ValidationError({"kind": f"{kind[:40]!r} is not one of {choices}"})
        kinds = [kind] if kind else None
        plan = render_request_neuron(neuron=neuron, kinds=kinds, requested_by=request.user)
    except ValidationError as exc:
        context = {"neuron": neuron, "errors": exc.message_dict}
        return render(request, "jobs/render_refused.html", context, status=400)
    if plan.jobs:
        messages.info(request, f"Queued: {', '.join(job.kind_label for job in plan.jobs)}.")
    else:
        messages.info(request, "Nothing is missing.")
    if kind:
        return redirect(
            f"{neuron.get_absolute_url()}?objective={OBJECTIVE_BY_KIND[ArtifactKind(kind)]}"
        )
    return redirect(neuron)


@require_safe
def job_status(request: HttpRequest, job_id: int) -> JsonResponse:
    """A job's status as JSON, for the pages' poll and for scripts."""
    return JsonResponse(selectors.render_job_get(job_id=job_id, viewer=request.user).as_status())


JOBS_PAGE = 100
STATUSES_MAX = 100  # jobs in one status request: a page of /jobs/


@require_safe
@repeatable("id")
def job_statuses(request: HttpRequest) -> JsonResponse:
    """The status of many jobs at once (``?id=3&id=5``), for the pages' poll: one request
    every few seconds, however many jobs a page follows. Unknown ids are left out."""
    given = request.GET.getlist("id")
    if not 1 <= len(given) <= STATUSES_MAX:
        return JsonResponse({"id": [f"give 1 to {STATUSES_MAX} job ids"]}, status=400)
    wrong = [value for value in given if whole_number(value) is None]
    if wrong:
        return JsonResponse({"id": [f"{wrong[0][:40]!r} is not a job id"]}, status=400)
    ids = {int(value) for value in given}
    jobs = selectors.render_job_list(viewer=request.user).filter(pk__in=ids)
    return JsonResponse({"jobs": [job.as_status() for job in jobs]})


@require_safe
def job_list(request: HttpRequest) -> HttpResponse:
    jobs = selectors.render_job_list(viewer=request.user)
    try:
        page = page_of(Paginator(jobs, JOBS_PAGE), request.GET.get("page"))
    except ValueError as exc:
        return render(request, "400.html", {"message": str(exc)}, status=400)
    for job in page:
        job.cancellable = job.cancellable_by(request.user)
    return render(request, "jobs/job_list.html", {"page": page})


@login_required
@require_POST
def job_cancel(request: HttpRequest, job_id: int) -> HttpResponse:
    """Cancel a queued or running job (its requester, or staff); back to where the button was."""
    job = selectors.render_job_get(job_id=job_id, viewer=request.user)
    if render_job_cancel_by(job=job, user=request.user):
        messages.info(request, f"Job {job.pk} cancelled; what it rendered is kept.")
    else:
        messages.info(request, f"Job {job.pk} had ended already ({job.status}).")
    back = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(back, {request.get_host()}, request.is_secure()):
        back = ""
    return redirect(back or "jobs:job_list")


@login_required
def explore(request: HttpRequest) -> HttpResponse:
    """Upload an image (or pick one of the corpus) and see which neurons fire on it."""
    models = [m for m in catalog.model_list() if m.has_weights]
    errors: dict[str, list[str]] = {}
    if request.method == "POST":
        model = next((m for m in models if m.slug == request.POST.get("model")), None)
        upload = request.FILES.get("image")
        try:
            if model is None:
                raise ValidationError({"model": "choose one of the models with weights"})
            exploration = exploration_request(
                owner=request.user,
                model=model,
                data=upload_read(upload) if upload is not None else None,
                name=upload.name if upload is not None else "",
                corpus_image=request.POST.get("corpus_image", ""),
            )
        except ValidationError as exc:
            errors = exc.message_dict
        else:
            return redirect(exploration)
    context = {
        "models": models,
        "corpus": corpus_images(),
        "errors": errors,
        "uploads": Upload.objects.filter(owner=request.user).prefetch_related(
            "explorations__model"
        )[:20],
    }
    return render(request, "jobs/explore.html", context, status=400 if errors else 200)


@login_required
@require_safe
def exploration(request: HttpRequest, pk: int) -> HttpResponse:
    found = exploration_get(pk=pk, viewer=request.user)
    return render(request, "jobs/exploration.html", exploration_page(found))


@login_required
@require_POST
def upload_remove(request: HttpRequest, pk: int) -> HttpResponse:
    upload = Upload.objects.filter(pk=pk, owner=request.user).first()
    if upload is None:
        raise Http404("there is no such upload of yours")
    upload_delete(upload=upload, viewer=request.user)
    messages.info(request, f"Deleted {upload.name} and its explorations.")
    return redirect("jobs:explore")
