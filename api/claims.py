"""Claims over the API: create, read, edit with history (ETag / If-Match), retract, review,
comment. Views validate input, call annotations' selectors and services, and serialize.

Claims carry their neurons as portable references (``inceptionv1/4c:447``), never only ids.
"""

from __future__ import annotations

from collections.abc import Mapping

from django.db.models import Prefetch, QuerySet
from django.http import Http404
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
)
from rest_framework import generics, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse

from annotations import selectors, services
from annotations.filters import ClaimFilter
from annotations.models import Claim, ClaimRevision, ClaimTerm, Kind, Status, Verdict
from annotations.services import ClaimError
from api.errors import PreconditionFailed, PreconditionRequired
from api.fields import Input, Text, Whole
from api.pagination import Cursor
from neurons.models import Neuron
from neurons.references import BadReference, resolve

TERMS = ClaimTerm.objects.select_related("neuron__layer__model").order_by("position")


def claim_etag(claim: Claim) -> str:
    """The version an edit must be based on: the claim's current revision."""
    return f'"claim-{claim.pk}-r{claim.revision_number}"'


# Output ------------------------------------------------------------------------------------


class TermSerializer(serializers.Serializer):
    ref = serializers.CharField(source="neuron.ref", help_text="portable neuron reference")
    role = serializers.ChoiceField(choices=["target", "component"])
    coefficient = serializers.FloatField()


class RevisionSerializer(serializers.Serializer):
    number = serializers.IntegerField()
    label = serializers.CharField()
    expression = serializers.CharField(help_text="circuit claims; short refs of the model")
    argument = serializers.CharField(help_text="Markdown")
    author = serializers.CharField(source="author.username")
    based_on = serializers.IntegerField(allow_null=True, help_text="the revision it edited")
    created = serializers.DateTimeField()
    terms = TermSerializer(many=True)


class ClaimSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    uid = serializers.UUIDField(help_text="identity across Microscope instances")
    kind = serializers.ChoiceField(choices=Kind.choices)
    target = serializers.CharField(source="target.ref", help_text="portable neuron reference")
    label = serializers.CharField(source="current_revision.label")
    expression = serializers.CharField(source="current_revision.expression")
    argument = serializers.CharField(source="current_revision.argument")
    terms = TermSerializer(many=True, source="current_revision.terms.all")
    revision = serializers.IntegerField(source="revision_number", help_text="current revision")
    etag = serializers.SerializerMethodField(help_text="send it in If-Match to edit")
    author = serializers.CharField(source="author.username")
    status = serializers.ChoiceField(choices=Status.choices)
    support_count = serializers.IntegerField()
    dispute_count = serializers.IntegerField()
    needs_evidence_count = serializers.IntegerField()
    retracted = serializers.BooleanField()
    retracted_at = serializers.DateTimeField(allow_null=True)
    created = serializers.DateTimeField()
    updated = serializers.DateTimeField()
    url = serializers.SerializerMethodField(help_text="the claim's page")
    api_url = serializers.SerializerMethodField()

    def get_etag(self, claim: Claim) -> str:
        return claim_etag(claim)

    def get_url(self, claim: Claim) -> str:
        return self.context["request"].build_absolute_uri(claim.get_absolute_url())

    def get_api_url(self, claim: Claim) -> str:
        return reverse("api-claim", args=[claim.pk], request=self.context["request"])


class ReviewSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    claim = serializers.IntegerField(source="claim_id")
    revision = serializers.IntegerField(source="revision.number", help_text="the one reviewed")
    reviewer = serializers.CharField(source="reviewer.username")
    verdict = serializers.ChoiceField(choices=Verdict.choices)
    reason = serializers.CharField()
    current = serializers.BooleanField(help_text="false: the reviewer changed their mind since")
    created = serializers.DateTimeField()


class CommentSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    claim = serializers.IntegerField(source="claim_id")
    author = serializers.CharField(source="author.username")
    body = serializers.CharField()
    created = serializers.DateTimeField()


# Input -------------------------------------------------------------------------------------
# Shapes only: what is required and well formed is the services' to say (ClaimError).


class ClaimCreateInput(Input):
    target = Text(max_length=200, help_text="the neuron it is about: inceptionv1/4c:447")
    kind = serializers.ChoiceField(choices=Kind.choices)
    label = Text(allow_blank=True, help_text="one line")
    argument = Text(allow_blank=True, help_text="Markdown")
    expression = Text(allow_blank=True, required=False, default="", help_text="circuit claims only")

    def validate_target(self, text: str) -> Neuron:
        try:
            return resolve(text)
        except BadReference as exc:
            raise serializers.ValidationError(str(exc)) from None


class ClaimUpdateInput(Input):
    # A claim as read (GET) may be sent back whole: its other fields are not edited here, and
    # a kind or target other than the claim's is refused (ClaimDetailApi._update).
    NOT_FIELDS = Input.NOT_FIELDS | frozenset(ClaimSerializer().fields)

    label = Text(allow_blank=True)
    argument = Text(allow_blank=True)
    expression = Text(allow_blank=True, required=False)


class ReviewInput(Input):
    verdict = serializers.ChoiceField(choices=Verdict.choices)
    reason = Text(allow_blank=True)
    revision = Whole(
        required=False,
        min_value=1,
        max_value=2**31 - 1,
        help_text="the revision you read; refused (409) if the claim was revised since",
    )


class CommentInput(Input):
    body = Text(allow_blank=True, help_text="Markdown")


# Views -------------------------------------------------------------------------------------


def _claim_response(request: Request, claim: Claim, code: int = status.HTTP_200_OK) -> Response:
    claim = selectors.claim_get(pk=claim.pk, viewer=request.user)  # fresh, with its terms
    response = Response(ClaimSerializer(claim, context={"request": request}).data, status=code)
    response["ETag"] = claim_etag(claim)
    if code == status.HTTP_201_CREATED:
        response["Location"] = reverse("api-claim", args=[claim.pk], request=request)
    return response


CLAIM_CREATE_EXAMPLES = [
    OpenApiExample(
        "A feature claim",
        value={
            "target": "inceptionv1/4c:447",
            "kind": "feature",
            "label": "car detector",
            "argument": "Fires on car bodies and wheels in the dataset examples.",
        },
        request_only=True,
    ),
    OpenApiExample(
        "A circuit claim",
        value={
            "target": "inceptionv1/4c:447",
            "kind": "circuit",
            "label": "cars = windows + wheels",
            "expression": "4c:447 = 0.8*4b:373 + 4b:237",
            "argument": "The strongest positive weights come from window and wheel detectors.",
        },
        request_only=True,
    ),
]
ETAG_HEADER = OpenApiParameter(
    "ETag", OpenApiTypes.STR, OpenApiParameter.HEADER, response=True,
    description="the current revision; send it back in If-Match to edit",
)  # fmt: skip
IF_MATCH = OpenApiParameter(
    "If-Match",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    required=True,
    description='The ETag of the revision your edit is based on, e.g. "claim-12-r3". '
    "412 if the claim was revised since; 428 if missing.",
)


class ClaimListApi(generics.GenericAPIView):
    pagination_class = Cursor
    filter_backends = [DjangoFilterBackend]
    filterset_class = ClaimFilter

    def get_queryset(self) -> QuerySet[Claim]:
        return selectors.claim_list(viewer=self.request.user)

    @extend_schema(operation_id="claims_list", responses=ClaimSerializer(many=True))
    def get(self, request: Request) -> Response:
        claims = self.filter_queryset(self.get_queryset())
        claims = claims.prefetch_related(Prefetch("current_revision__terms", queryset=TERMS))
        self.cursor_ordering = request.query_params.get("ordering") or "-created"
        page = self.paginate_queryset(claims)
        data = ClaimSerializer(page, many=True, context={"request": request}).data
        return self.get_paginated_response(data)

    @extend_schema(
        operation_id="claims_create",
        request=ClaimCreateInput,
        parameters=[ETAG_HEADER],
        responses={201: OpenApiResponse(ClaimSerializer, "the claim, with its ETag")},
        examples=CLAIM_CREATE_EXAMPLES,
    )
    def post(self, request: Request) -> Response:
        data = ClaimCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        claim = services.claim_create(author=request.user, **data.validated_data)
        return _claim_response(request, claim, status.HTTP_201_CREATED)


class ClaimDetailApi(generics.GenericAPIView):
    @extend_schema(
        operation_id="claims_retrieve", responses=ClaimSerializer, parameters=[ETAG_HEADER]
    )
    def get(self, request: Request, pk: int) -> Response:
        return _claim_response(request, selectors.claim_visible_get(pk=pk, viewer=request.user))

    @extend_schema(
        operation_id="claims_update",
        request=ClaimUpdateInput,
        parameters=[IF_MATCH, ETAG_HEADER],
        responses={200: OpenApiResponse(ClaimSerializer, "the claim at its new revision")},
        examples=[
            OpenApiExample(
                "A new revision",
                value={"label": "car detector", "argument": "Also fires on buses."},
                request_only=True,
            )
        ],
        description="A new revision; the author only. Send the ETag you read in If-Match.",
    )
    def put(self, request: Request, pk: int) -> Response:
        return self._update(request, pk, partial=False)

    @extend_schema(
        operation_id="claims_partial_update",
        request=ClaimUpdateInput(partial=True),
        parameters=[IF_MATCH, ETAG_HEADER],
        responses={200: OpenApiResponse(ClaimSerializer, "the claim at its new revision")},
        description="As PUT; fields left out keep their current text.",
    )
    def patch(self, request: Request, pk: int) -> Response:
        return self._update(request, pk, partial=True)

    def _update(self, request: Request, pk: int, *, partial: bool) -> Response:
        claim = selectors.claim_visible_get(pk=pk, viewer=request.user)
        services.claim_edit_check(claim=claim, author=request.user)  # 403 before 428
        based_on = _based_on(request, claim)
        fixed = {
            "kind": (claim.kind, "it never changes; post a new claim"),
            "target": (claim.target.ref, "it never changes; post a new claim"),
            "status": (claim.status, "reviews set it"),
            "retracted": (claim.retracted, f"retract with POST {request.path}retract/"),
        }
        for name, (now, how) in fixed.items():
            if isinstance(request.data, Mapping) and request.data.get(name, now) != now:
                raise serializers.ValidationError({name: [f"not edited here ({how}): {now!r}"]})
        data = ClaimUpdateInput(data=request.data, partial=partial)
        data.is_valid(raise_exception=True)
        current = claim.current_revision
        text = {
            "label": current.label,
            "argument": current.argument,
            "expression": current.expression,
        }
        text.update(data.validated_data)
        try:
            claim = services.claim_update(
                claim=claim, author=request.user, based_on=based_on, **text
            )
        except ClaimError as error:
            if error.code == ClaimError.STALE:  # revised between our read and the lock
                raise PreconditionFailed(error.message) from None
            raise
        return _claim_response(request, claim)


def _based_on(request: Request, claim: Claim) -> int:
    """The revision number named by If-Match, which must be the current one."""
    header = request.headers.get("If-Match", "").strip()
    if not header:
        raise PreconditionRequired()
    # A weak tag matches too: a proxy that compresses responses (nginx's gzip) turns the
    # ETag weak on the way, and a revision number is the same revision either way.
    tags = {tag.strip().removeprefix("W/").strip('"') for tag in header.split(",")}
    if "*" in tags:
        raise PreconditionRequired(
            "If-Match: * would overwrite any revision; send the ETag of the one you edited."
        )
    current = claim_etag(claim).strip('"')
    if current not in tags:
        raise PreconditionFailed(
            f"the claim is at revision {claim.revision_number} ({claim_etag(claim)}), not the "
            f"one you sent ({header[:100]}{'...' if len(header) > 100 else ''}); read it "
            "again and redo your edit on top of it"
        )
    return claim.revision_number


class ClaimRetractApi(generics.GenericAPIView):
    @extend_schema(operation_id="claims_retract", request=None, responses=ClaimSerializer)
    def post(self, request: Request, pk: int) -> Response:
        claim = selectors.claim_visible_get(pk=pk, viewer=request.user)
        return _claim_response(request, services.claim_retract(claim=claim, author=request.user))


class RevisionListApi(generics.GenericAPIView):
    pagination_class = None  # a claim has a handful of revisions

    @extend_schema(operation_id="claims_revisions_list", responses=RevisionSerializer(many=True))
    def get(self, request: Request, pk: int) -> Response:
        revisions = self._revisions(selectors.claim_visible_get(pk=pk, viewer=request.user))
        return Response(RevisionSerializer(revisions, many=True).data)

    @staticmethod
    def _revisions(claim: Claim) -> QuerySet[ClaimRevision]:
        return selectors.revision_list(claim=claim).prefetch_related(
            Prefetch("terms", queryset=TERMS)
        )


class RevisionDetailApi(RevisionListApi):
    @extend_schema(operation_id="claims_revisions_retrieve", responses=RevisionSerializer)
    def get(self, request: Request, pk: int, number: int) -> Response:  # type: ignore[override]
        claim = selectors.claim_visible_get(pk=pk, viewer=request.user)
        revision = self._revisions(claim).filter(number=number).first()
        if revision is None:
            raise Http404(f"claim {pk} has no revision {number} (it has 1-{claim.revision_number})")
        return Response(RevisionSerializer(revision).data)


class ReviewListApi(generics.GenericAPIView):
    pagination_class = Cursor

    @extend_schema(operation_id="claims_reviews_list", responses=ReviewSerializer(many=True))
    def get(self, request: Request, pk: int) -> Response:
        claim = selectors.claim_visible_get(pk=pk, viewer=request.user)
        reviews = selectors.review_list(viewer=request.user, claim=claim)
        page = self.paginate_queryset(reviews)
        return self.get_paginated_response(ReviewSerializer(page, many=True).data)

    @extend_schema(
        operation_id="claims_reviews_create",
        request=ReviewInput,
        responses={201: ReviewSerializer},
        examples=[
            OpenApiExample(
                "Support",
                value={
                    "verdict": "support",
                    "reason": "The top dataset examples are all cars.",
                    "revision": 1,
                },
                request_only=True,
            )
        ],
        description="Your verdict on the current revision; a later one replaces yours (the "
        "earlier one stays in the list with current=false). Not on your own claims.",
    )
    def post(self, request: Request, pk: int) -> Response:
        claim = selectors.claim_visible_get(pk=pk, viewer=request.user)
        data = ReviewInput(data=request.data)
        data.is_valid(raise_exception=True)
        review = services.claim_review(claim=claim, reviewer=request.user, **data.validated_data)
        review = selectors.review_list(viewer=request.user, claim=claim).get(pk=review.pk)
        return Response(ReviewSerializer(review).data, status=status.HTTP_201_CREATED)


class CommentListApi(generics.GenericAPIView):
    pagination_class = Cursor

    @extend_schema(operation_id="claims_comments_list", responses=CommentSerializer(many=True))
    def get(self, request: Request, pk: int) -> Response:
        claim = selectors.claim_visible_get(pk=pk, viewer=request.user)
        comments = selectors.comment_list(claim=claim, viewer=request.user)
        self.cursor_ordering = "created"
        page = self.paginate_queryset(comments)
        return self.get_paginated_response(CommentSerializer(page, many=True).data)

    @extend_schema(
        operation_id="claims_comments_create",
        request=CommentInput,
        responses={201: CommentSerializer},
        examples=[
            OpenApiExample(
                "A comment", value={"body": "Does it fire on trucks too?"}, request_only=True
            )
        ],
    )
    def post(self, request: Request, pk: int) -> Response:
        claim = selectors.claim_visible_get(pk=pk, viewer=request.user)
        data = CommentInput(data=request.data)
        data.is_valid(raise_exception=True)
        comment = services.comment_create(claim=claim, author=request.user, **data.validated_data)
        return Response(CommentSerializer(comment).data, status=status.HTTP_201_CREATED)
