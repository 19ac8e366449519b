"""Claim pages: thin views over the selectors and services. Every write is a POST with
Django's CSRF check; a refused write re-renders the page with the input kept (HTTP 400).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST, require_safe

from annotations import lists, selectors, services
from annotations.filters import ClaimFilter
from annotations.forms import (
    ClaimCreateForm,
    ClaimEditForm,
    CommentForm,
    HideForm,
    ReviewForm,
    form_add_claim_error,
)
from annotations.grammar import GrammarError, circuit_read, format_coefficient
from annotations.models import Claim, Comment, Kind, NeuronList, Review, Role, Status
from annotations.services import ClaimError
from jobs.selectors import Thumbnail, neuron_thumbnails
from neurons.labels import Label
from neurons.models import Model, Neuron
from neurons.references import (
    REF_RE,
    BadReference,
    find_layer,
    find_model,
    parse,
    resolve,
    resolve_anywhere,
)
from neurons.validation import page_of, whole_number

PAGE_SIZE = 50


@dataclass(frozen=True)
class Card:
    """A neuron as drawn in an expression: its link, thumbnail, and signed coefficient."""

    neuron: Neuron
    thumbnail: Thumbnail
    sign: str = ""
    factor: str = ""


def _cards(target: Neuron, components: list[tuple[Neuron, float]]) -> tuple[Card, list[Card]]:
    thumbnails = neuron_thumbnails(neurons=[target, *(neuron for neuron, _ in components)])
    cards = []
    for position, (neuron, coefficient) in enumerate(components):
        magnitude = format_coefficient(abs(coefficient))
        sign = "\N{MINUS SIGN}" if coefficient < 0 else ("" if position == 0 else "+")
        factor = "" if magnitude == "1" else f"{magnitude} \N{MULTIPLICATION SIGN}"
        cards.append(Card(neuron, thumbnails.get(neuron.pk, Thumbnail()), sign, factor))
    return Card(target, thumbnails.get(target.pk, Thumbnail())), cards


def _labelled_cards(neurons: list[Neuron]) -> list[tuple[Card, Label | None]]:
    """Each neuron's card (its picture) and its label, for search and list pages; two
    queries."""
    thumbnails = neuron_thumbnails(neurons=neurons)
    labels = selectors.neuron_labels(neurons)
    return [
        (Card(neuron, thumbnails.get(neuron.pk, Thumbnail())), labels.get(neuron.pk))
        for neuron in neurons
    ]


def _forbidden_or_400(error: ClaimError) -> None:
    if error.code == ClaimError.FORBIDDEN:
        raise PermissionDenied(error.message)


# Lists ---------------------------------------------------------------------------------


@require_safe
def claim_list(request: HttpRequest) -> HttpResponse:
    params = request.GET
    found = ClaimFilter(params, queryset=selectors.claim_list(viewer=request.user))
    problems = [] if found.is_valid() else [m for ms in found.problems.values() for m in ms]
    claims = found.qs if not problems else Claim.objects.none()
    try:
        page = page_of(Paginator(claims, PAGE_SIZE), params.get("page"))
    except ValueError as exc:
        return _bad_request(request, str(exc))
    query = params.copy()
    query.pop("page", None)
    context = {
        "page": page,
        "problems": problems,
        "params": params,
        "query": query.urlencode(),
        "statuses": Status.values,
        "models": Model.objects.order_by("slug").values_list("slug", flat=True),
    }
    return render(request, "annotations/claim_list.html", context, status=400 if problems else 200)


# One claim ------------------------------------------------------------------------------


def _claim_page(
    request: HttpRequest,
    claim: Claim,
    *,
    review_form: ReviewForm | None = None,
    comment_form: CommentForm | None = None,
    status: int = 200,
) -> HttpResponse:
    user = request.user
    staff = user.is_authenticated and user.is_staff
    revision = claim.current_revision
    show = staff or not claim.hidden
    terms = list(revision.terms.all())
    target, components = _cards(
        claim.target,
        [(term.neuron, term.coefficient) for term in terms if term.role == Role.COMPONENT],
    )
    revisions = list(selectors.revision_list(claim=claim))
    history = [
        (new, selectors.revision_diff(old=old, new=new))
        for old, new in itertools.pairwise(revisions)
    ]
    reviews = comments = []
    if show:
        reviews = list(selectors.review_list(viewer=user, claim=claim, placeholders=True))
        comments = list(selectors.comment_list(claim=claim, viewer=user, placeholders=True))
    visible_reviews = [review for review in reviews if review.shown]
    visible_comments = [comment for comment in comments if comment.shown]
    texts = [revision.argument if show else ""]
    texts += [review.reason for review in visible_reviews]
    texts += [comment.body for comment in visible_comments]
    # Imported here: a web process loads the Markdown parser with the first claim it shows.
    from annotations.rendering import markdown_render_many

    rendered = markdown_render_many(texts, model=claim.target.layer.model)
    for review in visible_reviews:
        review.reason_html = rendered[1 + visible_reviews.index(review)]
    offset = 1 + len(visible_reviews)
    for position, comment in enumerate(visible_comments):
        comment.body_html = rendered[offset + position]
    is_author = user.is_authenticated and user.pk == claim.author_id
    can_review = user.is_authenticated and not is_author and not claim.retracted
    mine = next((r for r in reviews if r.current and r.reviewer_id == user.pk), None)
    if review_form is None and can_review:
        initial = {"revision": revision.number}
        if mine is not None and mine.revision_id == revision.pk:
            initial |= {"verdict": mine.verdict, "reason": mine.reason}
        review_form = ReviewForm(initial=initial)
    context = {
        "claim": claim,
        "revision": revision,
        "show": show,
        "staff": staff,
        "argument_html": rendered[0],
        "target_card": target,
        "component_cards": components,
        "history": list(reversed(history)),
        "first_revision": revisions[0],
        "current_reviews": [r for r in reviews if r.current],
        "earlier_reviews": [r for r in reviews if not r.current],
        "comments": comments,
        "is_author": is_author,
        "can_review": can_review,
        "my_review": mine,
        "review_form": review_form,
        "comment_form": comment_form or (CommentForm() if user.is_authenticated else None),
        "hide_form": HideForm(),
    }
    return render(request, "annotations/claim_detail.html", context, status=status)


@require_safe
def claim_detail(request: HttpRequest, pk: int) -> HttpResponse:
    claim = selectors.claim_get(pk=pk, viewer=request.user)
    asked = request.GET.get("revision")  # whose evidence the page shows
    if asked is not None and not 1 <= (whole_number(asked) or 0) <= claim.revision_number:
        has = f"the claim has revisions 1 to {claim.revision_number}"
        return _bad_request(request, f"revision: {has}, not {asked[:40]!r}")
    return _claim_page(request, claim)


@require_POST
@login_required
def claim_review(request: HttpRequest, pk: int) -> HttpResponse:
    claim = selectors.claim_visible_get(pk=pk, viewer=request.user)
    form = ReviewForm(request.POST)
    if form.is_valid():
        try:
            services.claim_review(claim=claim, reviewer=request.user, **form.cleaned_data)
        except ClaimError as error:
            _forbidden_or_400(error)
            if error.code == ClaimError.STALE:  # the page now shows the new revision
                form = ReviewForm({**request.POST.dict(), "revision": claim.revision_number})
                form.is_valid()
            form_add_claim_error(form, error)
        else:
            messages.success(request, "Your review is recorded.")
            return redirect(claim.get_absolute_url() + "#reviews")
    return _claim_page(request, claim, review_form=form, status=400)


@require_POST
@login_required
def comment_create(request: HttpRequest, pk: int) -> HttpResponse:
    claim = selectors.claim_visible_get(pk=pk, viewer=request.user)
    form = CommentForm(request.POST)
    if form.is_valid():
        try:
            comment = services.comment_create(
                claim=claim, author=request.user, body=form.cleaned_data["body"]
            )
        except ClaimError as error:
            _forbidden_or_400(error)
            form_add_claim_error(form, error)
        else:
            return redirect(f"{claim.get_absolute_url()}#comment-{comment.pk}")
    return _claim_page(request, claim, comment_form=form, status=400)


@require_POST
@login_required
def claim_retract(request: HttpRequest, pk: int) -> HttpResponse:
    claim = selectors.claim_visible_get(pk=pk, viewer=request.user)
    try:
        services.claim_retract(claim=claim, author=request.user)
    except ClaimError as error:
        _forbidden_or_400(error)
        messages.error(request, error.message)
    else:
        messages.success(request, "The claim is retracted. It stays visible, marked retracted.")
    return redirect(claim)


@require_POST
@login_required
def claim_evidence(request: HttpRequest, pk: int) -> HttpResponse:
    """Ask again for the current revision's evidence (when it failed or was never made)."""
    claim = selectors.claim_visible_get(pk=pk, viewer=request.user)
    try:
        evidence = services.evidence_recompute(claim=claim, user=request.user)
    except ClaimError as error:
        _forbidden_or_400(error)
        messages.error(request, error.message)
    else:
        if evidence is None:
            messages.info(request, "The evidence of this revision is computed or on its way.")
        else:
            messages.success(request, "A worker will test the claim against the model.")
    return redirect(claim.get_absolute_url() + "#evidence")


def _content_hide(
    request: HttpRequest, content: Claim | Review | Comment, claim: Claim
) -> HttpResponse:
    form = HideForm(request.POST)
    form.is_valid()
    try:
        services.content_hide(
            moderator=request.user, content=content, hidden=form.cleaned_data.get("hidden", False)
        )
    except ClaimError as error:
        _forbidden_or_400(error)
    return redirect(claim)


@require_POST
@login_required
def claim_hide(request: HttpRequest, pk: int) -> HttpResponse:
    claim = get_object_or_404(Claim, pk=pk)
    return _content_hide(request, claim, claim)


@require_POST
@login_required
def review_hide(request: HttpRequest, pk: int) -> HttpResponse:
    review = get_object_or_404(Review.objects.select_related("claim"), pk=pk)
    return _content_hide(request, review, review.claim)


@require_POST
@login_required
def comment_hide(request: HttpRequest, pk: int) -> HttpResponse:
    comment = get_object_or_404(Comment.objects.select_related("claim"), pk=pk)
    return _content_hide(request, comment, comment.claim)


# Writing claims -------------------------------------------------------------------------


def _bad_request(request: HttpRequest, message: str) -> HttpResponse:
    """A form field no form of ours sends that way (a hand-made request): the field and why."""
    return render(request, "400.html", {"message": message}, status=400)


@login_required
def claim_create(request: HttpRequest) -> HttpResponse:
    """GET ``?target=inceptionv1/4c:447`` shows the form (the neuron page has it too)."""
    given = request.POST if request.method == "POST" else request.GET
    try:
        target = resolve(given.get("target", ""))
    except BadReference as exc:
        return _bad_request(request, f"target: {exc}")
    if request.method == "POST":
        form = ClaimCreateForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            try:
                claim = services.claim_create(
                    author=request.user,
                    target=target,
                    kind=data["kind"],
                    label=data["label"],
                    argument=data["argument"],
                    expression=_expression_sent(data["kind"], data["expression"]),
                )
            except ClaimError as error:
                _forbidden_or_400(error)
                form_add_claim_error(form, error)
            else:
                messages.success(request, "Your claim is posted.")
                return redirect(claim)
        status = 400
    else:
        form = ClaimCreateForm(
            initial={"target": target.ref, "expression": f"{target.short_ref} = "}
        )
        status = 200
    context = {"form": form, "target": target}
    return render(request, "annotations/claim_form.html", context, status=status)


def _expression_sent(kind: str, expression: str) -> str:
    """The form's expression; for a feature claim, none if it is only the form's start
    (``4c:447 =``, sent by a page without script), and any with terms is refused."""
    if kind != Kind.CIRCUIT and not expression.partition("=")[2].strip():
        return ""
    return expression


def _edit_form(claim: Claim, *args: object, **kwargs: object) -> ClaimEditForm:
    """The edit form; a feature claim's has no expression (one sent is not read)."""
    form = ClaimEditForm(*args, **kwargs)
    if claim.kind != Kind.CIRCUIT:
        del form.fields["expression"]
    return form


@login_required
def claim_edit(request: HttpRequest, pk: int) -> HttpResponse:
    claim = selectors.claim_visible_get(pk=pk, viewer=request.user)
    if claim.author_id != request.user.pk:
        raise PermissionDenied("only the author edits a claim")
    current = claim.current_revision
    newer = None
    if request.method == "POST":
        form = _edit_form(claim, request.POST)
        if form.is_valid():
            try:
                services.claim_update(claim=claim, author=request.user, **form.cleaned_data)
            except ClaimError as error:
                _forbidden_or_400(error)
                if error.code == ClaimError.STALE:
                    # Show what was saved meanwhile and keep the editor's text, now based on
                    # the revision shown: saving again is a deliberate choice.
                    newer = current
                    form = _edit_form(claim, {**request.POST.dict(), "based_on": current.number})
                    form.is_valid()
                form_add_claim_error(form, error)
            else:
                messages.success(request, f"Saved as revision {current.number + 1}.")
                return redirect(claim)
        status = 400
    else:
        form = _edit_form(
            claim,
            initial={
                "based_on": current.number,
                "label": current.label,
                "expression": current.expression,
                "argument": current.argument,
            },
        )
        status = 200
    context = {"form": form, "claim": claim, "target": claim.target, "newer": newer}
    return render(request, "annotations/claim_form.html", context, status=status)


@require_safe
def expression_preview(request: HttpRequest) -> JsonResponse:
    """The parsed expression, for the live preview: its terms, or the error and its column.

    ``?target=inceptionv1/4c:447&expression=4c:447 = 4b:373 + 4b:237`` (or ``model=``).
    """
    target = None
    target_text = request.GET.get("target", "").strip()
    if target_text:
        try:
            target = resolve(target_text)
        except BadReference as exc:
            return JsonResponse(
                {"ok": False, "error": {"field": "target", "message": str(exc)}}, status=400
            )
    try:
        circuit = circuit_read(
            request.GET.get("expression", ""),
            target=target,
            model=request.GET.get("model") or None,
        )
    except GrammarError as exc:
        error = {"field": "expression", "message": exc.message, "column": exc.column}
        return JsonResponse({"ok": False, "error": error}, status=400)
    thumbnails = neuron_thumbnails(
        neurons=[circuit.target, *(term.neuron for term in circuit.terms)]
    )

    def card(neuron: Neuron) -> dict[str, object]:
        return {
            "ref": neuron.ref,
            "short_ref": neuron.short_ref,
            "layer": neuron.layer.name,
            "url": neuron.get_absolute_url(),
            "thumbnail": thumbnails[neuron.pk].url if neuron.pk in thumbnails else None,
            "thumbnail_is_example": neuron.pk in thumbnails and thumbnails[neuron.pk].example,
        }

    return JsonResponse(
        {
            "ok": True,
            "canonical": circuit.canonical,
            "target": card(circuit.target),
            "terms": [
                {**card(term.neuron), "coefficient": term.coefficient} for term in circuit.terms
            ],
        }
    )


SEARCH_MAX = 200  # characters of a search


def _named(text: str, model: str | None) -> tuple[list[Neuron], str]:
    """The neurons a reference names, or why none: in the page's model first, then, for a
    reference without a model that it lacks (``mixed4c:447`` on a MobileNet page), any."""
    try:
        return resolve_anywhere(text, model=model), ""
    except BadReference as exc:
        if not model or "/" in text or _has_layer(model, text):
            return [], str(exc)  # e.g. an index out of range: that model's, said so
        try:
            return resolve_anywhere(text), ""
        except BadReference:
            return [], str(exc)


def _has_layer(model: str, text: str) -> bool:
    try:
        find_layer(find_model(model), parse(text).layer)
    except BadReference:
        return False
    return True


@require_safe
def search(request: HttpRequest) -> HttpResponse:
    """The header's box. A neuron reference in any form goes to the neuron (``f10:3`` on a
    page of a model is that model's; without one, each model where it names a neuron);
    anything else searches claims' labels and arguments, results grouped by neuron."""
    text = request.GET.get("q", "").strip()
    model = request.GET.get("model", "").strip() or None
    refused = ""
    if len(text) > SEARCH_MAX:
        refused = f"q: at most {SEARCH_MAX} characters ({len(text)} given)"
    elif model is not None:
        try:
            find_model(model)
        except BadReference as exc:
            refused = f"model: {exc}"
    if refused:
        context = {"q": text[:SEARCH_MAX], "error": refused, "candidates": [], "hits": []}
        return render(request, "annotations/search.html", context, status=400)
    candidates, error = _named(text, model) if REF_RE.fullmatch(text) else ([], "")
    if len(candidates) == 1:
        return redirect(candidates[0])
    hits = []
    if text and not candidates:
        found = selectors.neuron_search(text=text, viewer=request.user)
        cards = _labelled_cards([hit.neuron for hit in found])
        hits = [(hit, card, label) for hit, (card, label) in zip(found, cards, strict=True)]
    context = {"q": text, "error": error, "candidates": candidates, "hits": hits}
    return render(request, "annotations/search.html", context)


# Lists of neurons -----------------------------------------------------------------------


def _list_page(
    request: HttpRequest, neuron_list: NeuronList, errors: dict | None = None
) -> HttpResponse:
    found = lists.entries(neuron_list=neuron_list)
    cards = _labelled_cards([entry.neuron for entry in found])
    rows = [(entry, card, label) for entry, (card, label) in zip(found, cards, strict=True)]
    context = {
        "neuron_list": neuron_list,
        "rows": rows,
        "mine": request.user.is_authenticated and neuron_list.owner_id == request.user.pk,
        "errors": errors or {},
        "given": request.POST if errors else {},
    }
    return render(request, "annotations/list_detail.html", context, status=400 if errors else 200)


@require_safe
def list_index(request: HttpRequest) -> HttpResponse:
    context = {"mine": lists.lists_of(owner=request.user), "recent": lists.lists_recent()}
    return render(request, "annotations/list_index.html", context)


@login_required
@require_POST
def list_new(request: HttpRequest) -> HttpResponse:
    first = request.POST.get("neuron", "")  # made from a neuron's page: its first entry
    try:
        with transaction.atomic():  # the list and its first entry, or neither
            created = lists.list_create(
                owner=request.user,
                title=request.POST.get("title", ""),
                description=request.POST.get("description", ""),
            )
            if first:
                neuron = _neuron_given(first)
                lists.entry_add(
                    neuron_list=created,
                    editor=request.user,
                    neuron=neuron,
                    note=request.POST.get("note") or None,
                )
    except ValidationError as exc:
        context = {
            "mine": lists.lists_of(owner=request.user),
            "recent": lists.lists_recent(),
            "errors": exc.message_dict,
            "given": request.POST,
        }
        return render(request, "annotations/list_index.html", context, status=400)
    if first:
        return _entry_added(request, created, neuron)
    return redirect(created)


def _neuron_given(text: str) -> Neuron:
    try:
        return resolve(text[:200])
    except BadReference as exc:
        raise ValidationError({"neuron": str(exc)}) from None


def _entry_added(request: HttpRequest, neuron_list: NeuronList, neuron: Neuron) -> HttpResponse:
    messages.info(request, f"{neuron.ref} is in “{neuron_list.title}”.")
    if request.POST.get("back") == "neuron":
        return redirect(neuron)
    return redirect(neuron_list)


@require_safe
def list_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return _list_page(request, lists.list_get(pk=pk))


def _owned(request: HttpRequest, pk: int) -> NeuronList:
    found = lists.list_get(pk=pk)
    if found.owner_id != request.user.pk:
        raise PermissionDenied("only its owner edits a list")
    return found


@login_required
@require_POST
def list_add(request: HttpRequest, pk: int) -> HttpResponse:
    """Add a neuron by reference (from the list's page, or a neuron's page: ``next``)."""
    neuron_list = _owned(request, pk)
    try:
        neuron = _neuron_given(request.POST.get("neuron", ""))
        lists.entry_add(  # the form's empty note keeps the note of a neuron already there
            neuron_list=neuron_list,
            editor=request.user,
            neuron=neuron,
            note=request.POST.get("note") or None,
        )
    except ValidationError as exc:
        return _list_page(request, neuron_list, exc.message_dict)
    return _entry_added(request, neuron_list, neuron)


@login_required
@require_POST
def list_add_any(request: HttpRequest) -> HttpResponse:
    """A neuron page's form: the list is a field (``list``), not in the address."""
    pk = whole_number(request.POST.get("list"))
    if pk is None:
        return _bad_request(request, "list: choose one of your lists")
    return list_add(request, pk)


@login_required
@require_POST
def list_remove(request: HttpRequest, pk: int) -> HttpResponse:
    neuron_list = _owned(request, pk)
    try:
        neuron = resolve(request.POST.get("neuron", "")[:200])
    except BadReference as exc:
        return _list_page(request, neuron_list, {"neuron": [str(exc)]})
    lists.entry_remove(neuron_list=neuron_list, editor=request.user, neuron=neuron)
    return redirect(neuron_list)


@login_required
@require_POST
def list_edit(request: HttpRequest, pk: int) -> HttpResponse:
    neuron_list = _owned(request, pk)
    if "delete" in request.POST:
        if request.POST["delete"] != "1":
            return _list_page(request, neuron_list, {"delete": ["send 1 to delete the list"]})
        lists.list_delete(neuron_list=neuron_list, editor=request.user)
        messages.info(request, f"Deleted the list “{neuron_list.title}”.")
        return redirect("annotations:lists")
    try:
        lists.list_edit(
            neuron_list=neuron_list,
            editor=request.user,
            title=request.POST.get("title"),  # a field left out is left as it is
            description=request.POST.get("description"),
        )
    except ValidationError as exc:
        return _list_page(request, neuron_list, exc.message_dict)
    return redirect(neuron_list)
