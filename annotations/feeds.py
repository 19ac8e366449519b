"""An Atom feed of new claims per model (``/models/<slug>/claims.atom``)."""

from __future__ import annotations

from datetime import datetime

from django.contrib.syndication.views import Feed
from django.http import HttpRequest
from django.utils.feedgenerator import Atom1Feed
from django.utils.html import escape

from annotations import activity
from annotations.models import Claim
from neurons.models import Model
from neurons.selectors import model_get

FEED_ITEMS = 50


class ModelClaimsFeed(Feed):
    feed_type = Atom1Feed

    def get_object(self, request: HttpRequest, model: str) -> Model:
        return model_get(slug=model)  # a 404 for an unknown model

    def title(self, model: Model) -> str:
        return f"New claims about {model.title} · Microscope"

    def link(self, model: Model) -> str:
        return model.get_absolute_url()

    def subtitle(self, model: Model) -> str:
        return f"Feature and circuit claims about neurons of {model.slug}, newest first."

    def items(self, model: Model) -> list[Claim]:
        return activity.recent_claims(model=model.slug, limit=FEED_ITEMS)

    def item_title(self, claim: Claim) -> str:
        return f"{claim.target.ref}: {claim.current_revision.label}"

    def item_description(self, claim: Claim) -> str:
        # Atom's summary is HTML to feed readers: the argument goes in as text.
        return escape(
            f"{claim.kind} claim, {claim.status}. {claim.current_revision.argument[:500]}"
        )

    def item_author_name(self, claim: Claim) -> str:
        return claim.author.get_username()

    def item_pubdate(self, claim: Claim) -> datetime:
        return claim.created

    def item_updateddate(self, claim: Claim) -> datetime:
        return claim.updated
