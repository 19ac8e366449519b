"""Export and import of a model's claims, revisions, reviews and comments, between instances.

The document carries no database ids: neurons as portable references
(``inceptionv1/4c:447``), people as usernames, claims by their ``uid``. Import replays the
history through the claim services (so it is validated exactly as typed-in claims are) and
then restores the original timestamps. A claim whose uid is already here is skipped, so
importing a document twice adds nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import transaction
from django.db.models import Prefetch, QuerySet
from django.utils import timezone
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import generics, permissions, serializers
from rest_framework.request import Request
from rest_framework.response import Response

from annotations import selectors, services
from annotations.models import Claim, ClaimRevision, ClaimTerm, Comment, Kind, Review, Verdict
from annotations.services import ClaimError
from neurons.models import Model
from neurons.references import BadReference, find_model, resolve
from people.services import profile_update

FORMAT = "microscope-claims"
VERSION = 1
USERNAME = {"max_length": 150, "validators": [UnicodeUsernameValidator()]}


# The document --------------------------------------------------------------------------------


class TermDoc(serializers.Serializer):
    ref = serializers.CharField(max_length=200)
    role = serializers.ChoiceField(choices=["target", "component"])
    coefficient = serializers.FloatField()


class RevisionDoc(serializers.Serializer):
    number = serializers.IntegerField(min_value=1, max_value=2**31 - 1)
    label = serializers.CharField(allow_blank=True)
    expression = serializers.CharField(allow_blank=True, required=False, default="")
    argument = serializers.CharField(allow_blank=True)
    author = serializers.CharField(**USERNAME)
    created = serializers.DateTimeField()
    terms = TermDoc(many=True, required=False, help_text="for readers; import re-derives them")


class ReviewDoc(serializers.Serializer):
    revision = serializers.IntegerField(min_value=1, max_value=2**31 - 1)
    reviewer = serializers.CharField(**USERNAME)
    verdict = serializers.ChoiceField(choices=Verdict.choices)
    reason = serializers.CharField(allow_blank=True)
    current = serializers.BooleanField(required=False, default=True)
    hidden = serializers.BooleanField(required=False, default=False)
    created = serializers.DateTimeField()


class CommentDoc(serializers.Serializer):
    author = serializers.CharField(**USERNAME)
    body = serializers.CharField(allow_blank=True)
    hidden = serializers.BooleanField(required=False, default=False)
    created = serializers.DateTimeField()


class ClaimDoc(serializers.Serializer):
    uid = serializers.UUIDField()
    kind = serializers.ChoiceField(choices=Kind.choices)
    target = serializers.CharField(max_length=200, help_text="inceptionv1/4c:447")
    author = serializers.CharField(**USERNAME)
    created = serializers.DateTimeField()
    retracted_at = serializers.DateTimeField(allow_null=True, required=False, default=None)
    hidden = serializers.BooleanField(required=False, default=False)
    revisions = RevisionDoc(many=True, allow_empty=False)
    reviews = ReviewDoc(many=True, required=False, default=list)
    comments = CommentDoc(many=True, required=False, default=list)

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        numbers = [revision["number"] for revision in data["revisions"]]
        if sorted(numbers) != list(range(1, len(numbers) + 1)):
            raise serializers.ValidationError(
                {"revisions": f"revisions must be numbered 1 to {len(numbers)}, got {numbers}"}
            )
        for review in data["reviews"]:
            if review["revision"] > len(numbers):
                raise serializers.ValidationError(
                    {"reviews": f"a review of revision {review['revision']}, which is not here"}
                )
        return data


class PersonDoc(serializers.Serializer):
    username = serializers.CharField(**USERNAME)
    name = serializers.CharField(allow_blank=True, max_length=120, required=False, default="")
    institution = serializers.CharField(
        allow_blank=True, max_length=200, required=False, default=""
    )


class ExportDoc(serializers.Serializer):
    format = serializers.ChoiceField(choices=[FORMAT])
    version = serializers.ChoiceField(choices=[VERSION])
    model = serializers.SlugField()
    exported = serializers.DateTimeField(required=False)
    source = serializers.CharField(required=False, allow_blank=True, help_text="where from")
    people = PersonDoc(many=True, required=False, default=list)
    claims = ClaimDoc(many=True)


# Export (a read) -----------------------------------------------------------------------------


def claims_for_export(*, model: Model, viewer: AbstractBaseUser | AnonymousUser) -> QuerySet[Claim]:
    """A model's claims with their whole history, in a fixed number of queries.

    Hidden content only for staff (it is marked hidden in the document)."""
    staff = selectors.is_staff(viewer)
    terms = ClaimTerm.objects.select_related("neuron__layer__model").order_by("position")
    revisions = (
        ClaimRevision.objects.select_related("author")
        .prefetch_related(Prefetch("terms", queryset=terms))
        .order_by("number")
    )
    reviews = Review.objects.select_related("reviewer", "revision").order_by("created", "id")
    comments = Comment.objects.select_related("author").order_by("created", "id")
    claims = Claim.objects.filter(target__layer__model=model)
    if not staff:
        claims = claims.filter(hidden=False)
        reviews = reviews.filter(hidden=False)
        comments = comments.filter(hidden=False)
    return (
        claims.select_related("target__layer__model", "author")
        .prefetch_related(
            Prefetch("revisions", queryset=revisions),
            Prefetch("reviews", queryset=reviews),
            Prefetch("comments", queryset=comments),
        )
        .order_by("created", "id")
    )


def _person(user: AbstractBaseUser) -> dict[str, str]:
    profile = getattr(user, "profile", None)
    return {
        "username": user.get_username(),
        "name": profile.name if profile else "",
        "institution": profile.institution if profile else "",
    }


def claims_export(
    *, model: Model, viewer: AbstractBaseUser | AnonymousUser, source: str = ""
) -> dict[str, Any]:
    people: dict[int, AbstractBaseUser] = {}
    documents = []
    for claim in claims_for_export(model=model, viewer=viewer):
        people[claim.author_id] = claim.author
        revisions = []
        for revision in claim.revisions.all():
            people[revision.author_id] = revision.author
            revisions.append(
                {
                    "number": revision.number,
                    "label": revision.label,
                    "expression": revision.expression,
                    "argument": revision.argument,
                    "author": revision.author.get_username(),
                    "created": revision.created,
                    "terms": [
                        {"ref": t.neuron.ref, "role": t.role, "coefficient": t.coefficient}
                        for t in revision.terms.all()
                    ],
                }
            )
        reviews = []
        for review in claim.reviews.all():
            people[review.reviewer_id] = review.reviewer
            reviews.append(
                {
                    "revision": review.revision.number,
                    "reviewer": review.reviewer.get_username(),
                    "verdict": review.verdict,
                    "reason": review.reason,
                    "current": review.current,
                    "hidden": review.hidden,
                    "created": review.created,
                }
            )
        comments = []
        for comment in claim.comments.all():
            people[comment.author_id] = comment.author
            comments.append(
                {
                    "author": comment.author.get_username(),
                    "body": comment.body,
                    "hidden": comment.hidden,
                    "created": comment.created,
                }
            )
        documents.append(
            {
                "uid": claim.uid,
                "kind": claim.kind,
                "target": claim.target.ref,
                "author": claim.author.get_username(),
                "created": claim.created,
                "retracted_at": claim.retracted_at if claim.retracted else None,
                "hidden": claim.hidden,
                "revisions": revisions,
                "reviews": reviews,
                "comments": comments,
            }
        )
    profiles = _profiles(people.keys())
    return {
        "format": FORMAT,
        "version": VERSION,
        "model": model.slug,
        "exported": timezone.now(),
        "source": source,
        "people": sorted(
            (_person(profiles.get(pk, user)) for pk, user in people.items()),
            key=lambda person: person["username"],
        ),
        "claims": documents,
    }


def _profiles(ids: Iterable[int]) -> dict[int, AbstractBaseUser]:
    users = get_user_model().objects.filter(pk__in=list(ids)).select_related("profile")
    return {user.pk: user for user in users}


# Import (a write) ----------------------------------------------------------------------------


@dataclass
class ImportReport:
    claims_created: int = 0
    claims_skipped: int = 0
    revisions: int = 0
    reviews: int = 0
    comments: int = 0
    people_created: list[str] = field(default_factory=list)


class _People:
    """Users by username; unknown ones are created without a password (they cannot log in
    until someone sets one), with the name and institution the document gives."""

    def __init__(self, people: Iterable[Mapping[str, str]], report: ImportReport) -> None:
        self.known = {person["username"]: person for person in people}
        self.users: dict[str, AbstractBaseUser] = {}
        self.report = report

    def get(self, username: str) -> AbstractBaseUser:
        if username not in self.users:
            User = get_user_model()
            user = User.objects.filter(**{User.USERNAME_FIELD: username}).first()
            if user is None:
                user = User.objects.create_user(username, password=None)
                person = self.known.get(username, {})
                if person.get("name") or person.get("institution"):
                    profile_update(
                        user=user,
                        name=person.get("name", ""),
                        institution=person.get("institution", ""),
                    )
                self.report.people_created.append(username)
            self.users[username] = user
        return self.users[username]


def _refused(path: str, error: ClaimError | BadReference) -> ValidationError:
    if isinstance(error, BadReference):
        return ValidationError({path: str(error)})
    where = path if error.field == NON_FIELD_ERRORS else f"{path}.{error.field}"
    return ValidationError({where: error.message})


@transaction.atomic
def claims_import(*, document: Mapping[str, Any], importer: AbstractBaseUser) -> ImportReport:
    """Take a validated export document in. All of it, or nothing (ValidationError with the
    path of what is wrong: ``claims.3.revisions.1.expression``)."""
    if not importer.is_staff:
        raise ValidationError("only staff import")
    report = ImportReport()
    people = _People(document.get("people", []), report)
    existing = set(
        Claim.objects.filter(uid__in=[c["uid"] for c in document["claims"]]).values_list(
            "uid", flat=True
        )
    )
    for position, data in enumerate(document["claims"]):
        if data["uid"] in existing:
            report.claims_skipped += 1
            continue
        _claim_import(data=data, path=f"claims.{position}", people=people, importer=importer)
        existing.add(data["uid"])
        report.claims_created += 1
        report.revisions += len(data["revisions"])
        report.reviews += len(data["reviews"])
        report.comments += len(data["comments"])
    return report


def _history_import(
    *,
    claim: Claim,
    data: Mapping[str, Any],
    path: str,
    people: _People,
    importer: AbstractBaseUser,
) -> None:
    """The claim's later revisions and its reviews."""
    revisions = data["revisions"]
    # Each revision, then the reviews of it (in their order), then the next revision: the
    # order in which the services accepted them the first time.
    events = [(r["number"], 0, r["created"], i, "revision", r) for i, r in enumerate(revisions)]
    events += [
        (r["revision"], 1, r["created"], i, "review", r) for i, r in enumerate(data["reviews"])
    ]
    for number, _, created, index, what, item in sorted(events, key=lambda e: e[:4]):
        if what == "revision" and number == 1:
            continue
        where = f"{path}.{what}s.{index}"
        try:
            if what == "revision":
                services.claim_update(
                    claim=claim,
                    author=people.get(item["author"]),
                    based_on=number - 1,
                    label=item["label"],
                    argument=item["argument"],
                    expression=item["expression"],
                )
                ClaimRevision.objects.filter(claim=claim, number=number).update(created=created)
            else:
                review = services.claim_review(
                    claim=claim,
                    reviewer=people.get(item["reviewer"]),
                    verdict=item["verdict"],
                    reason=item["reason"],
                    revision=number,
                )
                Review.objects.filter(pk=review.pk).update(created=created)
                if item["hidden"]:
                    services.content_hide(moderator=importer, content=review)
        except ClaimError as exc:
            raise _refused(where, exc) from None


def _comments_import(
    *,
    claim: Claim,
    data: Mapping[str, Any],
    path: str,
    people: _People,
    importer: AbstractBaseUser,
) -> None:
    for index, item in enumerate(data["comments"]):
        try:
            comment = services.comment_create(
                claim=claim, author=people.get(item["author"]), body=item["body"]
            )
        except ClaimError as exc:
            raise _refused(f"{path}.comments.{index}", exc) from None
        Comment.objects.filter(pk=comment.pk).update(created=item["created"])
        if item["hidden"]:
            services.content_hide(moderator=importer, content=comment)


def _claim_import(
    *, data: Mapping[str, Any], path: str, people: _People, importer: AbstractBaseUser
) -> Claim:
    try:
        target = resolve(data["target"])
    except BadReference as exc:
        raise _refused(f"{path}.target", exc) from None
    author = people.get(data["author"])
    revisions = sorted(data["revisions"], key=lambda r: r["number"])
    first = revisions[0]
    try:
        claim = services.claim_create(
            author=author,
            target=target,
            kind=data["kind"],
            label=first["label"],
            argument=first["argument"],
            expression=first["expression"],
        )
    except ClaimError as exc:
        raise _refused(f"{path}.revisions.0", exc) from None
    Claim.objects.filter(pk=claim.pk).update(uid=data["uid"], created=data["created"])
    ClaimRevision.objects.filter(claim=claim, number=1).update(created=first["created"])

    _history_import(claim=claim, data=data, path=path, people=people, importer=importer)
    _comments_import(claim=claim, data=data, path=path, people=people, importer=importer)

    updated = max(r["created"] for r in revisions)
    if data["retracted_at"] is not None:
        services.claim_retract(claim=claim, author=author)
        updated = max(updated, data["retracted_at"])
        Claim.objects.filter(pk=claim.pk).update(retracted_at=data["retracted_at"])
    if data["hidden"]:
        services.content_hide(moderator=importer, content=claim)
    Claim.objects.filter(pk=claim.pk).update(updated=updated)
    return claim


# Views -----------------------------------------------------------------------------------------


class ExportQuery(serializers.Serializer):
    model = serializers.SlugField(help_text="the model whose claims to export: inceptionv1")


class ImportReportSerializer(serializers.Serializer):
    claims_created = serializers.IntegerField()
    claims_skipped = serializers.IntegerField(help_text="already here (same uid)")
    revisions = serializers.IntegerField()
    reviews = serializers.IntegerField()
    comments = serializers.IntegerField()
    people_created = serializers.ListField(child=serializers.CharField())


class ExportApi(generics.GenericAPIView):
    @extend_schema(operation_id="export", parameters=[ExportQuery], responses=ExportDoc)
    def get(self, request: Request) -> Response:
        query = ExportQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        try:
            model = find_model(query.validated_data["model"])
        except BadReference as exc:
            raise serializers.ValidationError({"model": [str(exc)]}) from None
        document = claims_export(
            model=model, viewer=request.user, source=request.build_absolute_uri("/")
        )
        return Response(ExportDoc(document).data)


class ImportApi(generics.GenericAPIView):
    permission_classes = [permissions.IsAdminUser]

    @extend_schema(
        operation_id="import",
        request=ExportDoc,
        responses={200: ImportReportSerializer},
        examples=[
            OpenApiExample(
                "A document from another instance",
                request_only=True,
                value={
                    "format": FORMAT,
                    "version": VERSION,
                    "model": "inceptionv1",
                    "people": [{"username": "alice", "name": "Alice", "institution": "Lab A"}],
                    "claims": [
                        {
                            "uid": "2f1c8f0e-5d7b-4c0e-9a55-8f1f7f0b9c11",
                            "kind": "feature",
                            "target": "inceptionv1/4c:447",
                            "author": "alice",
                            "created": "2025-01-01T12:00:00Z",
                            "revisions": [
                                {
                                    "number": 1,
                                    "label": "car detector",
                                    "argument": "Fires on cars.",
                                    "author": "alice",
                                    "created": "2025-01-01T12:00:00Z",
                                }
                            ],
                        }
                    ],
                },
            )
        ],
        description="Staff only. Claims already here (by uid) are skipped: importing the same "
        "document twice adds nothing. All or nothing: on an error nothing is stored.",
    )
    def post(self, request: Request) -> Response:
        document = ExportDoc(data=request.data)
        document.is_valid(raise_exception=True)
        report = claims_import(document=document.validated_data, importer=request.user)
        return Response(asdict(report))
