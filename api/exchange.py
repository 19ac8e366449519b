"""Export and import of a model's claims (revisions, reviews, comments) and lists of
neurons, between instances.

The document carries no database ids: neurons as portable references
(``inceptionv1/4c:447``), people as usernames, claims by their ``uid``. Import replays the
history through the claim services (so it is validated exactly as typed-in claims are) and
then restores the original timestamps. A claim whose uid is already here gets what it
lacks (later revisions, reviews, comments), so importing a document twice adds nothing and
a newer export brings the news. People keep the instance they come from.
"""

from __future__ import annotations

import hmac
import ipaddress
import itertools
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core import signing
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import transaction
from django.db.models import Prefetch, QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import generics, permissions, serializers
from rest_framework.request import Request
from rest_framework.response import Response

from annotations import selectors, services
from annotations.models import (
    Claim,
    ClaimRevision,
    ClaimTerm,
    Comment,
    Kind,
    ListEntry,
    NeuronList,
    Review,
    Verdict,
)
from annotations.services import ClaimError
from api.fields import Flag, OneLine, Slug, Text, Uid, Whole
from neurons.models import Model, Neuron
from neurons.references import BadReference, find_model, resolve
from neurons.validation import CONTROL_RE, bidi_closed, visible
from people.models import Profile
from people.services import profile_update

FORMAT = "microscope-claims"
VERSION = 1
# Instances' clocks may differ (a claim made on one, reviewed on another), but not by days.
CLOCK_SKEW = timedelta(days=1)
USERNAME = {"max_length": 150, "validators": [UnicodeUsernameValidator()]}


def _username_if_given(value: str) -> None:
    if value:
        UnicodeUsernameValidator()(value)


HOSTNAME_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?\.?")


def instance_url(value: str) -> None:
    """An instance's address: http(s), a host name or IP address, an optional port. Or a
    plain name (``lab-a``), as older documents gave and profiles may still hold. Imported
    people are named ``username@host`` after it."""
    if not value.strip() or HOSTNAME_RE.fullmatch(value.strip()):
        return
    try:
        parts = urlsplit(value.strip())
        parts.port  # noqa: B018  (a port out of range, or not a number, raises)
    except ValueError as error:
        raise serializers.ValidationError(f"not a URL: {error}") from None
    host = parts.hostname or ""
    if ":" in host:  # an IPv6 address, from between brackets
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            host = ""
    elif not HOSTNAME_RE.fullmatch(host):
        host = ""
    if parts.username is not None or parts.password is not None:
        raise serializers.ValidationError(
            "an instance's address without a user name or password: it is shown to everyone"
        )
    if parts.scheme not in ("http", "https") or not host:
        raise serializers.ValidationError(
            "an instance's address, e.g. https://microscope.lab-b.example/"
        )


# The document --------------------------------------------------------------------------------


class TermDoc(serializers.Serializer):
    ref = Text(max_length=200)
    role = serializers.ChoiceField(choices=["target", "component"])
    coefficient = serializers.FloatField()


class Moment(serializers.DateTimeField):
    """A date and time with its offset (``2026-11-02T09:15:00Z``), as an export writes
    them: one without (``2026-11-02T09:15:00``) names no moment, read here in this
    server's zone and there in another's."""

    default_error_messages = {
        "naive": "no time zone; give a date and time with its offset (2026-11-02T09:15:00Z)"
    }

    def to_internal_value(self, value: Any) -> datetime:
        if isinstance(value, str):
            try:
                parsed = parse_datetime(value)
            except ValueError:  # well formed, no date (month 13): DRF says so below
                parsed = None
            if parsed is not None and timezone.is_naive(parsed):
                self.fail("naive")
        return super().to_internal_value(value)


class Version(serializers.IntegerField):
    """The format's version, a JSON number as exports write it: a ChoiceField also took the
    text "1"."""

    default_error_messages = {
        "version": f"this instance reads version {VERSION} of the format, a number"
    }

    def to_internal_value(self, data: Any) -> int:
        if type(data) is not int or data != VERSION:
            self.fail("version")
        return data


class RevisionDoc(serializers.Serializer):
    number = Whole(min_value=1, max_value=2**31 - 1)
    label = OneLine(allow_blank=True)
    expression = Text(allow_blank=True, required=False, default="")
    argument = Text(allow_blank=True)
    author = Text(**USERNAME)
    created = Moment()
    terms = TermDoc(many=True, required=False, help_text="for readers; import re-derives them")


class ReviewDoc(serializers.Serializer):
    revision = Whole(min_value=1, max_value=2**31 - 1)
    reviewer = Text(**USERNAME)
    verdict = serializers.ChoiceField(choices=Verdict.choices)
    reason = Text(allow_blank=True)
    current = Flag(required=False, default=True)
    hidden = Flag(required=False, default=False)
    created = Moment()


class CommentDoc(serializers.Serializer):
    author = Text(**USERNAME)
    body = Text(allow_blank=True)
    hidden = Flag(required=False, default=False)
    created = Moment()


class ClaimDoc(serializers.Serializer):
    uid = Uid()
    kind = serializers.ChoiceField(choices=Kind.choices)
    target = Text(max_length=200, help_text="inceptionv1/4c:447")
    author = Text(**USERNAME)
    created = Moment()
    retracted_at = Moment(allow_null=True, required=False, default=None)
    hidden = Flag(required=False, default=False)
    revisions = RevisionDoc(many=True, allow_empty=False)
    reviews = ReviewDoc(many=True, required=False, default=list)
    comments = CommentDoc(many=True, required=False, default=list)

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        first = min(data["revisions"], key=lambda r: r["number"])
        if first["author"] != data["author"]:
            raise serializers.ValidationError(
                {"revisions": f"revision 1 is by {first['author']}, not the claim's author"}
            )
        late = timezone.now() + CLOCK_SKEW
        dates = {"created": data["created"], "retracted_at": data["retracted_at"]}
        dates |= {f"revisions.{i}.created": r["created"] for i, r in enumerate(data["revisions"])}
        dates |= {f"reviews.{i}.created": r["created"] for i, r in enumerate(data["reviews"])}
        dates |= {f"comments.{i}.created": r["created"] for i, r in enumerate(data["comments"])}
        for name, when in dates.items():
            if when is not None and when > late:
                raise serializers.ValidationError({name: f"{when.isoformat()} is in the future"})
            if when is not None and when + CLOCK_SKEW < data["created"]:
                raise serializers.ValidationError(
                    {name: f"{when.isoformat()} is before the claim was created"}
                )
        numbers = [revision["number"] for revision in data["revisions"]]
        if sorted(numbers) != list(range(1, len(numbers) + 1)):
            raise serializers.ValidationError(
                {"revisions": f"revisions must be numbered 1 to {len(numbers)}, got {numbers}"}
            )
        dated = sorted(enumerate(data["revisions"]), key=lambda item: item[1]["number"])
        for (_, earlier), (index, later) in itertools.pairwise(dated):
            if later["created"] + CLOCK_SKEW < earlier["created"]:
                raise serializers.ValidationError(
                    {
                        f"revisions.{index}.created": f"revision {later['number']} is dated "
                        f"before revision {earlier['number']}"
                    }
                )
        retracted = data["retracted_at"]
        for index, review in enumerate(data["reviews"]):
            if retracted is not None and review["created"] > retracted + CLOCK_SKEW:
                raise serializers.ValidationError(
                    {f"reviews.{index}.created": "a review made after the claim was retracted"}
                )
            if review["revision"] > len(numbers):
                raise serializers.ValidationError(
                    {"reviews": f"a review of revision {review['revision']}, which is not here"}
                )
        return data


class PersonDoc(serializers.Serializer):
    username = Text(**USERNAME, help_text="how the claims below name them")
    origin = Text(
        max_length=300,
        required=False,
        default="",
        allow_blank=True,
        validators=[instance_url],
        help_text="the instance they come from, when not the document's source",
    )
    origin_username = Text(
        max_length=150,
        validators=[_username_if_given],  # not USERNAME's pattern: "" matches no pattern
        required=False,
        default="",
        allow_blank=True,
        help_text="their name there",
    )
    name = OneLine(allow_blank=True, max_length=120, required=False, default="")
    institution = OneLine(allow_blank=True, max_length=200, required=False, default="")

    def to_representation(self, instance: Any) -> dict[str, Any]:
        person = super().to_representation(instance)
        if not person.get("origin"):  # a person of the document's source: no more to say
            person.pop("origin", None)
            person.pop("origin_username", None)
        return person


class ListEntryDoc(serializers.Serializer):
    ref = Text(max_length=200, help_text="inceptionv1/4c:447")
    note = Text(allow_blank=True, max_length=2000, required=False, default="")


class ListDoc(serializers.Serializer):
    uid = Uid()
    title = OneLine(max_length=200)
    description = Text(allow_blank=True, max_length=5000, required=False, default="")
    owner = Text(**USERNAME)
    entries = ListEntryDoc(many=True, help_text="those of the document's model")


class ExportDoc(serializers.Serializer):
    format = serializers.ChoiceField(choices=[FORMAT])
    version = Version(help_text=f"{VERSION}")
    model = Slug()
    exported = Moment(required=False)
    source = Text(
        max_length=300,
        required=False,
        allow_blank=True,
        validators=[instance_url],
        help_text="where from",
    )
    people = PersonDoc(many=True, required=False, default=list)
    claims = ClaimDoc(many=True)
    signature = Text(
        max_length=200,
        required=False,
        help_text="the exporting instance's: imported back there unedited, it is a restore "
        "(the only document that adds what that instance's own people made)",
    )
    lists = ListDoc(
        many=True, required=False, default=list, help_text="lists with neurons of the model"
    )

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        """One entry per person, claim and list: a second one of the same name or uid
        would be merged into the first, or win over it, unseen."""
        for name, key in (("people", "username"), ("claims", "uid"), ("lists", "uid")):
            seen: set[Any] = set()
            for index, item in enumerate(data[name]):
                if item[key] in seen:
                    raise serializers.ValidationError(
                        {f"{name}.{index}.{key}": f"{item[key]} is in the document twice"}
                    )
                seen.add(item[key])
        people = {person["username"] for person in data["people"]}
        for where, username in _named(data):
            if username not in people:
                raise serializers.ValidationError(
                    {where: f"{username} is not among the document's people"}
                )
        return data


def _named(document: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """(path, username) of each person a document's claims and lists name."""
    for c, claim in enumerate(document["claims"]):
        yield f"claims.{c}.author", claim["author"]
        for part, key in (("revisions", "author"), ("reviews", "reviewer"), ("comments", "author")):
            for i, item in enumerate(claim[part]):
                yield f"claims.{c}.{part}.{i}.{key}", item[key]
    for i, neuron_list in enumerate(document["lists"]):
        yield f"lists.{i}.owner", neuron_list["owner"]


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
    person = {
        "username": user.get_username(),
        "name": profile.name if profile else "",
        "institution": profile.institution if profile else "",
    }
    if profile is not None and profile.origin:
        person |= {"origin": profile.origin, "origin_username": profile.origin_username}
    return person


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
    lists = []
    entries = ListEntry.objects.filter(neuron__layer__model=model).select_related(
        "neuron__layer__model", "neuron_list__owner"
    )
    for entry in entries.order_by("neuron_list_id", "added", "id"):
        neuron_list = entry.neuron_list
        if not lists or lists[-1]["uid"] != neuron_list.uid:
            people[neuron_list.owner_id] = neuron_list.owner
            lists.append(
                {
                    "uid": neuron_list.uid,
                    "title": neuron_list.title,
                    "description": neuron_list.description,
                    "owner": neuron_list.owner.get_username(),
                    "entries": [],
                }
            )
        lists[-1]["entries"].append({"ref": entry.neuron.ref, "note": entry.note})
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
        "lists": lists,
    }


def _profiles(ids: Iterable[int]) -> dict[int, AbstractBaseUser]:
    users = get_user_model().objects.filter(pk__in=list(ids)).select_related("profile")
    return {user.pk: user for user in users}


# Import (a write) ----------------------------------------------------------------------------


@dataclass
class ImportReport:
    claims_created: int = 0
    claims_merged: int = 0  # here already; later revisions, reviews or comments added
    claims_skipped: int = 0  # here already, with everything the document has
    revisions: int = 0
    reviews: int = 0
    comments: int = 0
    # Claims retracted, and reviews replaced and content hidden, by their own instance since
    # this one imported them.
    flags: int = 0
    lists_created: int = 0
    list_entries: int = 0  # entries added to lists, new or here already
    people_created: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)  # what was left out, and why


class _People:
    """The document's people as users here. A person of this instance (the document comes
    from here, or names this instance as their origin) is the user of that username. A
    person of another instance is a user of their own, ``name@host``, created once without
    a password and found again by (origin, their username there): two labs' "alice" never
    become one account.

    This instance is the authority on its own people: all they wrote is here. So only its
    own export (a backup) creates their accounts or adds what they wrote; a document from
    elsewhere that does is refused (:meth:`writes_as`). And the flags of what is here
    already (a review replaced, content hidden) follow a document only where it comes from
    their author's own instance (:meth:`speaks_for`): another lab's moderation of a claim it
    imported stays there."""

    def __init__(
        self,
        people: Iterable[Mapping[str, str]],
        source: str,
        here: str,
        report: ImportReport,
        own: bool = False,
    ) -> None:
        self.known = {person["username"]: (i, person) for i, person in enumerate(people)}
        self.here = _instance(here)
        # This instance's own export, its signature says: its people are its own, whatever
        # host name it was exported under (127.0.0.1 or localhost).
        self.own = own
        self.source = self.here if own else _instance(source)
        self.users: dict[str, AbstractBaseUser] = {}
        self.origins: dict[int, str] = {}  # a user's instance, "" for this one
        self.report = report

    def get(self, username: str) -> AbstractBaseUser:
        if username not in self.users:
            index, person = self.known.get(username, (None, {}))
            origin = _instance(person.get("origin") or self.source)
            name = person.get("origin_username") or username
            if not origin or origin == self.here:
                where = "people" if index is None else f"people.{index}"
                self.users[username] = self._local(name, person, where)
            else:
                self.users[username] = self._foreign(origin, name, person)
        return self.users[username]

    def _own(self) -> bool:
        """Whether the document is this instance's own export, unedited (signed here)."""
        return self.own

    def _local(self, username: str, person: Mapping[str, str], where: str) -> AbstractBaseUser:
        User = get_user_model()
        user = User.objects.filter(**{User.USERNAME_FIELD: username}).first()
        if user is None:
            if not self._own():
                raise ValidationError(
                    {
                        where: f"{username} is named as a person of this instance, and nobody "
                        f"here is called that; only this instance's own export makes its "
                        f"people's accounts, not a document from {self._from()}"
                    }
                )
            user = self._create(username, person)
        return user

    def _from(self) -> str:
        return self.source or "an instance it does not name"

    def _origin(self, user: AbstractBaseUser) -> str:
        if user.pk not in self.origins:
            found = Profile.objects.filter(user=user).values_list("origin", flat=True).first()
            self.origins[user.pk] = _instance(found or "")
        return self.origins[user.pk]

    def lacks(self, user: AbstractBaseUser) -> bool:
        """Whether what a document says ``user`` made is not to be taken: they are a person
        of this instance, and the document is not its own (what this instance lacks of
        theirs, they deleted here, or they never made)."""
        return not self._origin(user) and not self._own()

    def writes_as(self, user: AbstractBaseUser, where: str) -> None:
        """Refuse (at ``where``) to add or change, in the name of a person of this instance,
        what a document from elsewhere says they wrote."""
        if self.lacks(user):
            raise ValidationError(
                {
                    where: f"{user.get_username()} is a person of this instance, who wrote all "
                    f"they wrote here: a document from {self._from()} cannot add to it or "
                    "change it"
                }
            )

    def follows(self, user: AbstractBaseUser) -> bool:
        """Whether the document says for ``user`` what only they, or their instance, can:
        it comes from their instance, or is this instance's own export."""
        return self._own() or self.speaks_for(user)

    def speaks_for(self, user: AbstractBaseUser) -> bool:
        """Whether the document comes from the instance of another's ``user``, so that its
        flags of what they wrote (replaced, hidden) are taken."""
        origin = self._origin(user)
        return bool(origin) and origin == self.source

    def _foreign(self, origin: str, name: str, person: Mapping[str, str]) -> AbstractBaseUser:
        found = Profile.objects.filter(origin=origin, origin_username=name).first()
        if found is not None:
            return found.user
        User = get_user_model()
        parts = urlsplit(origin)  # checked by instance_url: it parses
        # A username holds letters, digits and @.+-_ only: not an IPv6 address's ":" or "%".
        host = re.sub(r"[^\w.@+-]", "-", parts.hostname or origin)
        if parts.port:
            host = f"{host}-{parts.port}"
        # Cut to fit 150 characters with a "-N" suffix, the name and not the "@host" that
        # tells the account is another instance's.
        host = host[:70]
        base = f"{name[: 139 - len(host)]}@{host}"
        username, n = base, 1
        while User.objects.filter(**{User.USERNAME_FIELD: username}).exists():
            n += 1
            username = f"{base}-{n}"
        return self._create(username, person, origin=origin, origin_username=name)

    def _create(
        self,
        username: str,
        person: Mapping[str, str],
        *,
        origin: str = "",
        origin_username: str = "",
    ) -> AbstractBaseUser:
        user = get_user_model().objects.create_user(username, password=None)
        # Text that shows nothing (a zero-width space) is no name here, as the forms say.
        given = {field: person.get(field, "") for field in ("name", "institution")}
        shown = {field: text if visible(text) else "" for field, text in given.items()}
        if shown["name"] or shown["institution"] or origin:
            profile = profile_update(user=user, **shown)
            if origin:
                profile.origin, profile.origin_username = origin, origin_username
                profile.save(update_fields=["origin", "origin_username"])
        self.report.people_created.append(username)
        return user


def _without_control_characters(data: Any) -> Any:
    """The document with control characters (but tab and newlines) dropped from its text,
    and the bidi embeddings and isolates it leaves open closed: claims stored before they
    were refused may hold some (a form feed pasted from a PDF). What is stored from now on
    holds none, and a document exported here always imports."""
    if isinstance(data, str):
        return bidi_closed(CONTROL_RE.sub("", data))
    if isinstance(data, list):
        return [_without_control_characters(item) for item in data]
    if isinstance(data, Mapping):
        return {key: _without_control_characters(value) for key, value in data.items()}
    return data


def _instance(url: str) -> str:
    """An instance's address, as exports name it: scheme and host, no path; in lower case
    and without the scheme's default port (``https://LAB-A.example:443/`` is
    ``https://lab-a.example/``)."""
    parts = urlsplit(url.strip())
    if not (parts.scheme and parts.netloc):
        return url.strip()
    scheme, netloc = parts.scheme.lower(), parts.netloc.lower()
    default = {"http": ":80", "https": ":443"}.get(scheme, "")
    if default and netloc.endswith(default):
        netloc = netloc.removesuffix(default)
    return f"{scheme}://{netloc}/"


def _refused(path: str, error: ClaimError | BadReference) -> ValidationError:
    if isinstance(error, BadReference):
        return ValidationError({path: str(error)})
    where = path if error.field == NON_FIELD_ERRORS else f"{path}.{error.field}"
    return ValidationError({where: error.message})


@dataclass
class _Added:
    revisions: int = 0
    reviews: int = 0
    comments: int = 0
    flags: int = 0  # reviews replaced and content hidden there since it was imported here

    def __bool__(self) -> bool:
        return bool(self.revisions or self.reviews or self.comments or self.flags)


@transaction.atomic
def claims_import(
    *,
    document: Mapping[str, Any],
    importer: AbstractBaseUser,
    here: str = "",
    own: bool = False,
) -> ImportReport:
    """Take a validated export document in. All of it, or nothing (ValidationError with the
    path of what is wrong: ``claims.3.revisions.1.expression``).

    A claim new here is created with its history; a claim here already (by uid) gets what
    the document has and it lacks: later revisions, reviews and comments (importing the
    same document again adds nothing). ``here``: this instance's address, to tell its own
    people from another instance's; ``own``: the document is this instance's own export,
    unedited (:func:`signed_here`), which alone adds what its people made.
    """
    if not importer.is_staff:
        raise ValidationError("only staff import")
    report = ImportReport()
    people = _People(document.get("people", []), document.get("source", ""), here, report, own)
    uids = [c["uid"] for c in document["claims"]]
    existing = {
        claim.uid: claim
        for claim in Claim.objects.filter(uid__in=uids).select_related(
            "target__layer__model", "author"
        )
    }
    for position, data in enumerate(document["claims"]):
        path = f"claims.{position}"
        target = _target(data, path, document["model"])
        claim = existing.get(data["uid"])
        if claim is None:
            existing[data["uid"]], added = _claim_import(
                data=data, target=target, path=path, people=people, importer=importer
            )
            report.claims_created += 1
        else:
            if (claim.kind, claim.target_id) != (data["kind"], target.pk):
                raise ValidationError(
                    {
                        f"{path}.target": f"claim {data['uid']} is here already, as a "
                        f"{claim.get_kind_display().lower()} claim on {claim.target.ref}: a "
                        "claim's kind and target never change"
                    }
                )
            if people.get(data["author"]).pk != claim.author_id:
                raise ValidationError(
                    {
                        f"{path}.author": f"claim {data['uid']} is here already, by "
                        f"{claim.author.get_username()}: a claim's author never changes"
                    }
                )
            added = _claim_merge(
                claim=claim, data=data, path=path, people=people, importer=importer, report=report
            )
            if added:
                report.claims_merged += 1
            else:
                report.claims_skipped += 1
        report.revisions += added.revisions
        report.reviews += added.reviews
        report.comments += added.comments
        report.flags += added.flags
    _lists_import(document=document, people=people, report=report)
    return report


def _lists_import(*, document: Mapping[str, Any], people: _People, report: ImportReport) -> None:
    """A list new here is created with its owner; one here already (by uid) gets the
    entries it lacks. Notes of entries here already are kept."""
    uids = [data["uid"] for data in document.get("lists", [])]
    existing = {
        found.uid: found
        for found in NeuronList.objects.filter(uid__in=uids).select_related("owner")
    }
    for position, data in enumerate(document.get("lists", [])):
        path = f"lists.{position}"
        neuron_list = existing.get(data["uid"])
        owner = people.get(data["owner"])
        if neuron_list is None:
            if people.lacks(owner):  # deleted here, or never made: not made again from here
                report.ignored.append(
                    f"{path}: {owner.get_username()}'s list {data['uid']}, which this "
                    "instance does not have, from another instance's document"
                )
                continue
            neuron_list = NeuronList.objects.create(
                uid=data["uid"], owner=owner, title=data["title"], description=data["description"]
            )
            existing[data["uid"]] = neuron_list
            report.lists_created += 1
        elif neuron_list.owner_id != owner.pk:
            raise ValidationError(
                {
                    f"{path}.owner": f"list {data['uid']} is here already, owned by "
                    f"{neuron_list.owner.get_username()}: a list's owner never changes"
                }
            )
        have = set(neuron_list.entries.values_list("neuron_id", flat=True))
        for number, entry in enumerate(data["entries"]):
            where = f"{path}.entries.{number}"
            neuron = _target(entry, where, document["model"], "ref")
            if neuron.pk not in have:
                if people.lacks(owner):  # removed here, or never added
                    report.ignored.append(
                        f"{where}: {neuron.ref} in {owner.get_username()}'s list, which this "
                        "instance does not have, from another instance's document"
                    )
                    continue
                ListEntry.objects.create(neuron_list=neuron_list, neuron=neuron, note=entry["note"])
                have.add(neuron.pk)
                report.list_entries += 1


def _target(data: Mapping[str, Any], path: str, model: str, field: str = "target") -> Neuron:
    try:
        target = resolve(data[field])
    except BadReference as exc:
        raise _refused(f"{path}.{field}", exc) from None
    if target.layer.model.slug != model:
        raise ValidationError(
            {f"{path}.{field}": f"{target.ref} is not a neuron of {model}, the document's model"}
        )
    return target


def _history_import(
    *,
    claim: Claim,
    data: Mapping[str, Any],
    path: str,
    people: _People,
    importer: AbstractBaseUser,
) -> _Added:
    """The claim's revisions after its current one, and the reviews it does not have yet
    (same reviewer, revision and time), in the order the services first accepted them:
    each revision, then the reviews of it, then the next revision."""
    have_revisions = claim.revision_number
    # (revision, reviewer, time) -> (verdict, reason): a review is never edited.
    have_reviews = {
        (number, reviewer, created): (verdict, reason)
        for number, reviewer, created, verdict, reason in Review.objects.filter(
            claim=claim
        ).values_list("revision__number", "reviewer", "created", "verdict", "reason")
    }
    events = [
        (r["number"], 0, r["created"], i, "revision", r) for i, r in enumerate(data["revisions"])
    ]
    events += [
        (r["revision"], 1, r["created"], i, "review", r) for i, r in enumerate(data["reviews"])
    ]
    added = _Added()
    superseded = []  # reviews the document says a later one of their reviewer replaced
    hidden_since: list[Review] = []
    for number, _, created, index, what, item in sorted(events, key=lambda e: e[:4]):
        if what == "revision" and number <= have_revisions:
            continue
        where = f"{path}.{what}s.{index}"
        if what == "review":
            reviewer = people.get(item["reviewer"])
            if (number, reviewer.pk, created) in have_reviews:
                _same_as_here(
                    where, "review", have_reviews[number, reviewer.pk, created],
                    (item["verdict"], item["reason"]),
                )  # fmt: skip
                if not people.speaks_for(reviewer):
                    continue
                here = Review.objects.filter(
                    claim=claim, revision__number=number, reviewer=reviewer, created=created
                )
                # Hidden, or replaced, there since it was imported here.
                hidden = list(here.filter(hidden=False)) if item["hidden"] else []
                replaced = [] if item["current"] else list(here.filter(current=True))
                hidden_since += hidden
                superseded += [review.pk for review in replaced]
                added.flags += len(hidden) + len(replaced)
                continue
        try:
            if what == "revision":
                author = people.get(item["author"])
                people.writes_as(author, f"{where}.author")
                services.claim_update(
                    claim=claim,
                    author=author,
                    based_on=number - 1,
                    label=item["label"],
                    argument=item["argument"],
                    expression=item["expression"],
                )
                ClaimRevision.objects.filter(claim=claim, number=number).update(created=created)
                added.revisions += 1
            else:
                people.writes_as(reviewer, f"{where}.reviewer")
                review = services.claim_review(
                    claim=claim,
                    reviewer=reviewer,
                    verdict=item["verdict"],
                    reason=item["reason"],
                    revision=number,
                    made=created,  # history: even if revised, retracted or hidden here since
                )
                have_reviews[number, reviewer.pk, created] = (review.verdict, review.reason)
                if not item["current"]:
                    superseded.append(review.pk)
                if item["hidden"]:
                    services.content_hide(moderator=importer, content=review)
                added.reviews += 1
        except ClaimError as exc:
            raise _refused(where, exc) from None
    for review in hidden_since:
        services.content_hide(moderator=importer, content=review)
    if superseded:
        # Replayed in order, a reviewer's last review here would be current, though the
        # document's later one (hidden, so not exported to everyone) replaced it there.
        Review.objects.filter(pk__in=superseded).update(current=False)
        claim.refresh_from_db()
        services.claim_status_refresh(claim=claim)
        claim.save(update_fields=services.STATUS_FIELDS)
    return added


def _as_read(value: object) -> object:
    if isinstance(value, tuple):
        return tuple(_as_read(item) for item in value)
    return _without_control_characters(value).strip() if isinstance(value, str) else value


def _same_as_here(where: str, what: str, here: object, theirs: object) -> None:
    """Refuse a review or comment that is here already (same person, revision and time, or
    earlier in the document) with other content: neither is ever edited, so the document
    was, and which one to keep is not a guess."""
    # Both as the document's text was read (stripped, without control characters: what was
    # stored before they were refused may hold some, and its own export must import).
    if _as_read(here) != _as_read(theirs):
        raise ValidationError(
            {
                where: f"this {what} (same person and time) is here already, or earlier in "
                f"the document, with other content: a {what} is never edited; nothing was "
                "imported"
            }
        )


def _comments_import(
    *,
    claim: Claim,
    data: Mapping[str, Any],
    path: str,
    people: _People,
    importer: AbstractBaseUser,
    added: _Added,
) -> None:
    """The comments the claim does not have yet (same author and time), counted in ``added``."""
    # (author, time) -> body: a comment is never edited.
    have = {
        (author, created): body
        for author, created, body in Comment.objects.filter(claim=claim).values_list(
            "author", "created", "body"
        )
    }
    for index, item in enumerate(data["comments"]):
        author = people.get(item["author"])
        if (author.pk, item["created"]) in have:
            _same_as_here(
                f"{path}.comments.{index}", "comment", have[author.pk, item["created"]],
                item["body"],
            )  # fmt: skip
            if item["hidden"] and people.speaks_for(author):  # hidden there since imported here
                for shown in Comment.objects.filter(
                    claim=claim, author=author, created=item["created"], hidden=False
                ):
                    services.content_hide(moderator=importer, content=shown)
                    added.flags += 1
            continue
        people.writes_as(author, f"{path}.comments.{index}.author")
        try:
            comment = services.comment_create(
                claim=claim, author=author, body=item["body"], made=item["created"]
            )
        except ClaimError as exc:
            raise _refused(f"{path}.comments.{index}", exc) from None
        have[author.pk, item["created"]] = comment.body
        if item["hidden"]:
            services.content_hide(moderator=importer, content=comment)
        added.comments += 1


def _claim_import(
    *,
    data: Mapping[str, Any],
    target: Neuron,
    path: str,
    people: _People,
    importer: AbstractBaseUser,
) -> tuple[Claim, _Added]:
    author = people.get(data["author"])
    people.writes_as(author, f"{path}.author")
    first = min(data["revisions"], key=lambda r: r["number"])
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
    added = _history_import(claim=claim, data=data, path=path, people=people, importer=importer)
    added.revisions += 1
    _comments_import(
        claim=claim, data=data, path=path, people=people, importer=importer, added=added
    )
    _claim_end_state(
        claim=claim,
        data=data,
        author=author,
        importer=importer,
        retract=data["retracted_at"] is not None,
        hide=data["hidden"],
    )
    return claim, added


def _claim_merge(
    *,
    claim: Claim,
    data: Mapping[str, Any],
    path: str,
    people: _People,
    importer: AbstractBaseUser,
    report: ImportReport,
) -> _Added:
    """What the document has of a claim that this instance lacks. Its revisions up to this
    instance's current one must be the same (else the claim was edited on both sides, and
    the import is refused, naming the revision)."""
    claim = Claim.objects.select_related("current_revision", "author", "target__layer__model").get(
        pk=claim.pk
    )
    local = {r.number: r for r in claim.revisions.all()}
    for index, item in enumerate(data["revisions"]):
        mine = local.get(item["number"])
        if mine is None:
            continue
        theirs = (item["label"], item["argument"], item["expression"])
        if (mine.label, mine.argument, mine.expression) == theirs:
            continue
        try:  # as it was stored when imported: stripped, the expression canonical
            theirs = services.revision_content(
                kind=claim.kind, target=claim.target, label=item["label"],
                argument=item["argument"], expression=item["expression"],
            )  # fmt: skip
        except ClaimError:
            pass  # then as written
        if (mine.label, mine.argument, mine.expression) != theirs:
            raise ValidationError(
                {
                    f"{path}.revisions.{index}": f"revision {mine.number} differs from this "
                    "instance's: the claim was edited on both; nothing was imported"
                }
            )
    before = claim.updated
    added = _history_import(claim=claim, data=data, path=path, people=people, importer=importer)
    _comments_import(
        claim=claim, data=data, path=path, people=people, importer=importer, added=added
    )
    # Only its author retracts a claim: a retraction comes from their own instance, or, for
    # this instance's people, from its own export. A hiding, a moderator's, comes from the
    # author's instance, as for reviews and comments (this instance's own export does not
    # hide again what staff here have shown since).
    author = claim.author.get_username()
    retract = bool(data["retracted_at"]) and not claim.retracted
    if retract:
        people.writes_as(claim.author, f"{path}.retracted_at")
        retract = people.follows(claim.author)
        if not retract:
            report.ignored.append(
                f"{path}.retracted_at: claim {claim.uid} is retracted in the document; only "
                f"{author}'s own instance says so here"
            )
    hide = data["hidden"] and not claim.hidden
    if hide:
        hide = people.speaks_for(claim.author)
        if not hide and not people.follows(claim.author):
            report.ignored.append(
                f"{path}.hidden: claim {claim.uid} is hidden in the document; only "
                f"{author}'s own instance's moderation is taken here"
            )
    added.flags += retract + hide
    if added:
        _claim_end_state(
            claim=claim,
            data=data,
            author=claim.author,
            importer=importer,
            since=before,
            retract=retract,
            hide=hide,
        )
    return added


def _claim_end_state(
    *,
    claim: Claim,
    data: Mapping[str, Any],
    author: AbstractBaseUser,
    importer: AbstractBaseUser,
    retract: bool,
    hide: bool,
    since: datetime | None = None,
) -> None:
    """Retracted and hidden as ``retract`` and ``hide`` say (what of the document is
    taken), and last updated as the document says (not before ``since``, the last update
    here of a claim merged)."""
    claim.refresh_from_db()
    updated = max(r["created"] for r in data["revisions"])
    if retract:
        if not claim.retracted:
            services.claim_retract(claim=claim, author=author)
        updated = max(updated, data["retracted_at"])
        Claim.objects.filter(pk=claim.pk).update(retracted_at=data["retracted_at"])
    if hide and not claim.hidden:
        services.content_hide(moderator=importer, content=claim)
    Claim.objects.filter(pk=claim.pk).update(updated=max(updated, since or updated))


_SIGNER_SALT = "microscope.export"


def _canonical(document: Mapping[str, Any]) -> str:
    rest = {key: value for key, value in document.items() if key != "signature"}
    return json.dumps(rest, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def export_signature(document: Mapping[str, Any]) -> str:
    """This instance's signature of an export (HMAC with its secret key, over the document
    as JSON): importing it back here, and only unedited, is a restore of its own."""
    return signing.Signer(salt=_SIGNER_SALT).signature(_canonical(document))


def signed_here(document: Any) -> bool:
    if not isinstance(document, Mapping) or not isinstance(document.get("signature"), str):
        return False
    expected = export_signature(document)
    return hmac.compare_digest(expected, document["signature"])


# Views -----------------------------------------------------------------------------------------


class ExportQuery(serializers.Serializer):
    model = Slug(help_text="the model whose claims to export: inceptionv1")


class ImportReportSerializer(serializers.Serializer):
    claims_created = serializers.IntegerField()
    claims_merged = serializers.IntegerField(
        help_text="already here (same uid); their later revisions, reviews or comments added"
    )
    claims_skipped = serializers.IntegerField(help_text="already here, with all the document has")
    revisions = serializers.IntegerField()
    reviews = serializers.IntegerField()
    comments = serializers.IntegerField()
    flags = serializers.IntegerField(
        help_text="claims retracted, reviews replaced and content hidden by their own "
        "instance since they were imported here"
    )
    lists_created = serializers.IntegerField()
    list_entries = serializers.IntegerField(help_text="entries added to lists")
    people_created = serializers.ListField(child=Text())
    ignored = serializers.ListField(
        child=Text(),
        help_text="what was left out, and why: e.g. a list of this instance's "
        "people that it no longer has",
    )


def this_instance(request: Request) -> str:
    """This instance's address: MICROSCOPE_SITE_URL, else the request's. Without the
    setting, the same site reached by two names (127.0.0.1 and localhost) is two instances
    to its imports."""
    return settings.MICROSCOPE_SITE_URL or request.build_absolute_uri("/")


class ExportApi(generics.GenericAPIView):
    @extend_schema(operation_id="export", parameters=[ExportQuery], responses=ExportDoc)
    def get(self, request: Request) -> Response:
        query = ExportQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        try:
            model = find_model(query.validated_data["model"])
        except BadReference as exc:
            raise serializers.ValidationError({"model": [str(exc)]}) from None
        document = claims_export(model=model, viewer=request.user, source=this_instance(request))
        body = ExportDoc(document).data
        body["signature"] = export_signature(body)
        return Response(body)


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
                    "source": "https://microscope.lab-b.example/",
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
        description="Staff only. A claim already here (by uid) gets what the document has "
        "and it lacks (later revisions, reviews, comments): importing the same document twice "
        "adds nothing. People from another instance become accounts of their own "
        "(name@host), never a local account of the same name; what this instance's own "
        "people wrote comes only from its own export, and a claim's author or a list's owner "
        "never changes. All or nothing: on an error nothing is stored.",
    )
    def post(self, request: Request) -> Response:
        own = signed_here(request.data)
        document = ExportDoc(data=_without_control_characters(request.data))
        document.is_valid(raise_exception=True)
        report = claims_import(
            document=document.validated_data,
            importer=request.user,
            here=this_instance(request),
            own=own,
        )
        return Response(asdict(report))
