"""An Atom feed of new claims per model (``/models/<slug>/claims.atom``)."""

from __future__ import annotations

import re
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
# What XML 1.0 cannot carry, and Django's feed writer refuses (a 500 for everyone reading the
# feed). Stored text may hold it (an import, an older claim): it is dropped here.
NOT_XML_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def xml_text(text: str) -> str:
    return NOT_XML_RE.sub("", text)


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
        return xml_text(f"{claim.target.ref}: {claim.current_revision.label}")

    def item_description(self, claim: Claim) -> str:
        # Atom's summary is HTML to feed readers: the argument goes in as text.
        text = f"{claim.kind} claim, {claim.status}. {claim.current_revision.argument[:500]}"
        return escape(xml_text(text))

    def item_author_name(self, claim: Claim) -> str:
        return xml_text(claim.author.get_username())

    def item_pubdate(self, claim: Claim) -> datetime:
        return claim.created

    def item_updateddate(self, claim: Claim) -> datetime:
        return claim.updated
