"""Reads for pages: what a neuron or a layer has been rendered as, and how its jobs stand.

A few queries per page, whatever the layer's size; nothing here runs torch.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.files.storage import default_storage
from django.db.models import Q, QuerySet
from django.http import Http404

import render
from jobs.apps import EXPLORATION_KIND
from jobs.models import OBJECTIVE_BY_KIND, Artifact, ArtifactKind, Exploration, RenderJob
from jobs.params import INPUTS, OUTPUTS, tier_of
from neurons.labels import Label, labels_of
from neurons.models import Layer, Neuron
from neurons.selectors import layer_above, layer_below
from render import catalog

RECENT_JOBS = 5
# What a neuron's page shows, asked for by its button when missing.
PAGE_KINDS = (
    ArtifactKind.FEATUREVIS,
    ArtifactKind.FEATUREVIS_NEGATIVE,
    ArtifactKind.FEATUREVIS_DIVERSITY,
    ArtifactKind.EXAMPLES,
)
# The kinds that give a neuron its picture on grids, lists and cards.
PICTURE_KINDS = (ArtifactKind.FEATUREVIS, ArtifactKind.EXAMPLES)


@dataclass
class Example:
    url: str
    image: str
    value: float
    pos: tuple[int, int]
    # The box around the max (or min) position, in percent of the image: left, top, w, h.
    box: tuple[float, float, float, float]
    # The square of the image to show (pixels: left, top, side) and the unit's receptive
    # field (pixels: left, top, width, height), where the sweep measured it.
    crop: tuple[int, int, int] = (0, 0, 0)
    field: tuple[float, float, float, float] | None = None
    size: int = 0  # the image's side in pixels
    both: bool = False  # the image is among the top and the bottom examples


@dataclass
class Bar:
    x: float
    y: float
    width: float
    height: float
    title: str


def _tier_rank(identity: dict[str, Any], weights_sha256: str) -> tuple[bool, int]:
    """What a page shows first: renders of the current weights and code; then full renders,
    and custom ones with at least the full tier's steps and size; then previews; then other
    custom renders. Anyone signed in may ask for a custom render of 1 step at 16 px: it
    must not take the place of a better picture."""
    current = (
        identity.get("weights_sha256") == weights_sha256
        and identity.get("code_version") == render.CODE_VERSION
    )
    if identity.get("upsample") is False:  # the preview tier's recipes
        return current, 1
    full = (
        identity.get("steps", 0) >= settings.MICROSCOPE_RENDER_STEPS
        and identity.get("size", 0) >= settings.MICROSCOPE_RENDER_SIZE
    )
    return current, 2 if full else 0


@dataclass
class Tab:
    """One objective's feature visualization on a neuron's page."""

    objective: str  # "channel", "neuron", "negative", "diversity"
    kind: str  # its artifact kind
    title: str
    artifact: Artifact | None
    active: bool = False
    state: str = ""  # without an artifact: the state of the job that would make it


# The neuron page's tabs, in order: lucent's objectives.
TAB_TITLES = {
    ArtifactKind.FEATUREVIS: "Channel",
    ArtifactKind.FEATUREVIS_NEURON: "Centre neuron",
    ArtifactKind.FEATUREVIS_NEGATIVE: "Negative",
    ArtifactKind.FEATUREVIS_DIVERSITY: "Diversity",
}


@dataclass
class NeuronVisuals:
    featurevis: Artifact | None = None
    featurevis_tier: str = ""  # "preview", "full" or "custom"
    neuron: Artifact | None = None
    negative: Artifact | None = None
    diversity: Artifact | None = None
    examples: Artifact | None = None
    top: list[Example] = field(default_factory=list)
    bottom: list[Example] = field(default_factory=list)
    # Every minimum is the same (0 after a ReLU): bottom examples say nothing then.
    bottom_flat: bool = False
    histogram: list[Bar] = field(default_factory=list)
    histogram_range: tuple[float, float] = (0.0, 0.0)
    missing: list[str] = field(default_factory=list)
    # Why the page offers no button: the weights are not installed.
    cannot_render: str = ""
    jobs: list[RenderJob] = field(default_factory=list)
    tabs: list[Tab] = field(default_factory=list)

    @property
    def active_jobs(self) -> list[RenderJob]:
        return [job for job in self.jobs if job.is_active]

    @property
    def any(self) -> bool:
        return any((self.featurevis, self.neuron, self.negative, self.diversity, self.examples))


def _examples(
    entries: list[dict[str, Any]], input_size: int, others: set[str] = frozenset()
) -> list[Example]:
    found = []
    for entry in entries:
        left, top, right, bottom = entry["box"]
        box = tuple(100 * v / input_size for v in (left, top, right - left, bottom - top))
        unit = entry.get("field")
        found.append(
            Example(
                url=default_storage.url(entry["file"]),
                image=entry["image"],
                value=entry["value"],
                pos=tuple(entry["pos"]),
                box=box,
                crop=(left, top, right - left),
                field=None
                if unit is None
                else (unit[0], unit[1], unit[2] - unit[0], unit[3] - unit[1]),
                size=input_size,
                both=entry["image"] in others,
            )
        )
    return found


def histogram_bars(counts: list[int], edges: list[float]) -> list[Bar]:
    """Bars of a 100 x 40 SVG, heights on a log scale (most activations sit near zero)."""
    if not counts:
        return []
    top = math.log1p(max(counts)) or 1.0
    width = 100 / len(counts)
    bars = []
    for i, count in enumerate(counts):
        height = 40 * math.log1p(count) / top
        bars.append(
            Bar(
                x=i * width,
                y=40 - height,
                width=width * 0.9,
                height=height,
                title=f"{edges[i]:.3g} to {edges[i + 1]:.3g}: {count}",
            )
        )
    return bars


def jobs_covering(*, neuron: Neuron) -> QuerySet[RenderJob]:
    """The jobs that render something of ``neuron``. An exploration runs a private photo
    through the whole model, but renders nothing of a neuron: it is never one of them."""
    layer = neuron.layer
    return (
        RenderJob.objects.filter(model_id=layer.model_id)
        .exclude(kind=EXPLORATION_KIND)
        .filter(Q(layer=layer) | Q(layer__isnull=True))
        .filter(channel_start__lte=neuron.index)
        .filter(Q(channel_stop__isnull=True) | Q(channel_stop__gt=neuron.index))
        .select_related("model", "layer", "requested_by")
        .order_by("-created")
    )


def artifact_kinds_of(*, neuron: Neuron) -> set[str]:
    """The kinds of artifact a neuron has, whatever their parameters."""
    return set(Artifact.objects.filter(neuron=neuron).values_list("kind", flat=True))


def weights_layers(*, neuron: Neuron) -> dict[str, Layer | None]:
    """The upper layer of each weights job a neuron's page reads: its own layer for its
    inputs (None when nothing is below it) and the layer above for its outputs (None at
    the top)."""
    layer = neuron.layer
    return {
        INPUTS: layer if layer_below(layer) is not None else None,
        OUTPUTS: layer_above(layer),
    }


def weights_missing(*, neuron: Neuron) -> list[Layer]:
    """Upper layers whose weights job would fill what the neuron's page lacks."""
    have = set(
        Artifact.objects.filter(neuron=neuron, kind=ArtifactKind.WEIGHTS).values_list(
            "params__direction", flat=True
        )
    )
    return [
        upper
        for direction, upper in weights_layers(neuron=neuron).items()
        if upper is not None and direction not in have
    ]


def neuron_visuals(*, neuron: Neuron, objective: str = "") -> NeuronVisuals:
    """The best artifact of each kind for a neuron, its recent jobs, and a tab per
    objective (``objective`` the one shown first; the first rendered by default)."""
    visuals = NeuronVisuals()
    slots = {
        ArtifactKind.FEATUREVIS: "featurevis",
        ArtifactKind.FEATUREVIS_NEURON: "neuron",
        ArtifactKind.FEATUREVIS_NEGATIVE: "negative",
        ArtifactKind.FEATUREVIS_DIVERSITY: "diversity",
        ArtifactKind.EXAMPLES: "examples",
    }
    artifacts = Artifact.objects.filter(neuron=neuron, kind__in=list(slots))
    sha = neuron.layer.model.weights_sha256
    for artifact in artifacts.order_by("-created", "-pk"):  # the best tier, then the newest
        slot = slots[ArtifactKind(artifact.kind)]
        held = getattr(visuals, slot)
        if held is None or _tier_rank(artifact.params, sha) > _tier_rank(held.params, sha):
            setattr(visuals, slot, artifact)
    if visuals.featurevis is not None:
        visuals.featurevis_tier = tier_of(visuals.featurevis.params)
    if visuals.examples is not None:
        data = visuals.examples.data
        size = data["input_size"]
        tops, bottoms = ({e["image"] for e in data[side]} for side in ("top", "bottom"))
        visuals.top = _examples(data["top"], size, bottoms)
        visuals.bottom = _examples(data["bottom"], size, tops)
        visuals.bottom_flat = (
            len(visuals.bottom) > 1 and len({e.value for e in visuals.bottom}) == 1
        )
        histogram = data["histogram"]
        visuals.histogram = histogram_bars(histogram["counts"], histogram["edges"])
        visuals.histogram_range = (histogram["edges"][0], histogram["edges"][-1])
    visuals.missing = [
        ArtifactKind(k).label for k in PAGE_KINDS if getattr(visuals, slots[k]) is None
    ]
    if weights_missing(neuron=neuron):
        visuals.missing.append(ArtifactKind.WEIGHTS.label)
    visuals.jobs = list(jobs_covering(neuron=neuron)[:RECENT_JOBS])
    visuals.tabs = _tabs(visuals, slots, objective)
    model = neuron.layer.model
    if not model.has_weights:
        visuals.cannot_render = catalog.missing_message(catalog.get(model.slug))
    return visuals


def _tabs(visuals: NeuronVisuals, slots: dict[str, str], objective: str) -> list[Tab]:
    states: dict[str, str] = {}
    for job in visuals.jobs:  # the newest first
        states.setdefault(job.kind, job.status)
    tabs = [
        Tab(
            objective=OBJECTIVE_BY_KIND[kind],
            kind=kind,
            title=title,
            artifact=getattr(visuals, slots[kind]),
            state=states.get(kind.value, ""),
        )
        for kind, title in TAB_TITLES.items()
    ]
    chosen = next((tab for tab in tabs if tab.objective == objective), None)
    chosen = chosen or next((tab for tab in tabs if tab.artifact is not None), tabs[0])
    chosen.active = True
    return tabs


@dataclass
class Link:
    """One connection as a neuron's page draws it."""

    neuron: Neuron | None  # the neuron at the other end (None if the catalog lacks it)
    ref: str  # short reference, "f4:17"
    thumbnail: Thumbnail
    channel: int
    strength: float
    sign: int
    rank: int
    heatmap: str  # data: URI
    kernel_size: tuple[int, int]
    skip: bool = False  # the namesake, joined by an identity skip
    label: Label | None = None  # the other neuron's current label

    @property
    def excitatory(self) -> bool:
        return self.sign > 0


@dataclass
class Connections:
    """A neuron's strongest inputs or outputs, or why there are none."""

    direction: str  # "inputs" or "outputs"
    layer: Layer | None  # the layer at the other end; None: nothing below (or above)
    links: list[Link] = field(default_factory=list)
    count: int = 0  # channels ranked (all of the other layer's)
    computed: bool = False


@dataclass
class NeuronWeights:
    inputs: Connections
    outputs: Connections
    # Why nothing can be computed: the model's weights are not installed.
    weights_missing: str = ""

    @property
    def missing(self) -> bool:
        return any(
            side.layer is not None and not side.computed for side in (self.inputs, self.outputs)
        )


def neuron_weights(*, neuron: Neuron) -> NeuronWeights:
    """A neuron's strongest inputs and outputs by expanded weights, with the connected
    neurons' thumbnails: a few small queries, whatever the layers' sizes."""
    layer = neuron.layer
    model = layer.model
    layers = list(Layer.objects.filter(model_id=model.pk).order_by("position"))
    here = next(i for i, found in enumerate(layers) if found.pk == layer.pk)
    below = layers[here - 1] if here > 0 else None
    above = layers[here + 1] if here + 1 < len(layers) else None
    for found in layers:
        found.model = model
    result = NeuronWeights(inputs=Connections(INPUTS, below), outputs=Connections(OUTPUTS, above))
    if not model.has_weights:
        result.weights_missing = catalog.missing_message(catalog.get(model.slug))
        return result
    newest: dict[str, Artifact] = {}
    rows = Artifact.objects.filter(neuron=neuron, kind=ArtifactKind.WEIGHTS).order_by(
        "-created", "-pk"
    )
    for artifact in rows:
        newest.setdefault(artifact.data.get("direction", ""), artifact)
    by_name = {found.name: found for found in layers}
    layers_by_pk = {found.pk: found for found in layers}
    wanted: dict[tuple[int, int], None] = {}
    for side in (result.inputs, result.outputs):
        artifact = newest.get(side.direction)
        if artifact is None or side.layer is None:
            continue
        side.computed = True
        side.count = artifact.data["count"]
        side.layer = by_name.get(artifact.data["other"], side.layer)
        for entry in artifact.data["connections"]:
            wanted[(side.layer.pk, entry["channel"])] = None
    neurons: dict[tuple[int, int], Neuron] = {}
    if wanted:
        query = Q()
        for layer_id in {layer_id for layer_id, _ in wanted}:
            indices = [index for found, index in wanted if found == layer_id]
            query |= Q(layer_id=layer_id, index__in=indices)
        for found in Neuron.objects.filter(query):
            found.layer = layers_by_pk[found.layer_id]
            neurons[(found.layer_id, found.index)] = found
    thumbnails = neuron_thumbnails(neurons=neurons.values())
    labels = labels_of(neurons.values())
    unpictured = {layer_id for (layer_id, _), n in neurons.items() if n.pk not in thumbnails}
    waiting = job_states(layers=[layers_by_pk[layer_id] for layer_id in unpictured])
    for side in (result.inputs, result.outputs):
        artifact = newest.get(side.direction)
        if not side.computed or artifact is None:
            continue
        for entry in artifact.data["connections"]:
            where = (side.layer.pk, entry["channel"])
            other = neurons.get(where)
            thumbnail = thumbnails.get(other.pk) if other is not None else None
            side.links.append(
                Link(
                    neuron=other,
                    ref=f"{side.layer.alias}:{entry['channel']}",
                    thumbnail=thumbnail or Thumbnail(state=waiting.get(where, "")),
                    channel=entry["channel"],
                    strength=entry["strength"],
                    sign=entry["sign"],
                    rank=entry["rank"],
                    heatmap=entry["heatmap"],
                    kernel_size=tuple(artifact.data["kernel_size"]),
                    skip=bool(entry.get("skip")),
                    label=labels.get(other.pk) if other is not None else None,
                )
            )
    return result


@dataclass(frozen=True)
class Thumbnail:
    """A neuron's picture where pages show many: its best feature visualization, else the
    crop of its top dataset example (said so), else none yet with the state of the job
    that would make one."""

    url: str = ""
    example: bool = False  # a dataset example's crop, not a feature visualization
    state: str = ""  # without a picture: "queued", "running", "failed", ... or ""

    def __bool__(self) -> bool:
        return bool(self.url)

    @property
    def label(self) -> str:
        if self.example:
            return "top dataset example (no feature visualization yet)"
        if self.url:
            return "feature visualization"
        return f"not rendered yet ({self.state})" if self.state else "not rendered yet"


def _thumbnails(artifacts: QuerySet[Artifact], key: str) -> dict[Any, Thumbnail]:
    """``key`` value -> the best picture among ``artifacts``: the best feature visualization
    (by ``_tier_rank``, then the newest; none that stayed flat grey), else the newest top
    example's crop (the whole image, for examples swept before crops were stored). One
    query."""
    best: dict[Any, tuple[tuple[bool, int], str]] = {}
    examples: dict[Any, str] = {}
    rows = (
        artifacts.filter(kind__in=PICTURE_KINDS)
        .order_by("-created", "-pk")
        .values_list(
            key,
            "kind",
            "files",
            "params",
            "layer__model__weights_sha256",
            "data__top__0__file",
            "data__flat",
        )
    )
    for value, kind, files, identity, sha, whole, flat in rows:
        if kind == ArtifactKind.EXAMPLES:
            name = files[0] if files else whole
            if name:
                examples.setdefault(value, name)
            continue
        rank = _tier_rank(identity, sha)
        if flat:  # never left its grey start: no picture of the neuron
            continue
        if files and (value not in best or rank > best[value][0]):
            best[value] = (rank, files[0])
    found = {value: Thumbnail(default_storage.url(name)) for value, (_, name) in best.items()}
    for value, name in examples.items():
        found.setdefault(value, Thumbnail(default_storage.url(name), example=True))
    return found


def job_states(
    *, layers: Sequence[Layer], kinds: Iterable[str] = PICTURE_KINDS
) -> dict[tuple[int, int], str]:
    """(layer id, channel) -> the status of the newest job of ``kinds`` that covers it: what
    a missing picture waits for. One query (atlas jobs cover ranges: they are few)."""
    if not layers:
        return {}
    states: dict[tuple[int, int], str] = {}
    jobs = (
        RenderJob.objects.filter(model_id=layers[0].model_id, kind__in=list(kinds))
        .filter(Q(layer__in=list(layers)) | Q(layer__isnull=True))
        .order_by("created", "pk")
        .values_list("layer_id", "channel_start", "channel_stop", "status")
    )
    for layer_id, start, stop, status in jobs:  # newer jobs overwrite older ones
        for layer in layers if layer_id is None else [x for x in layers if x.pk == layer_id]:
            end = layer.channels if stop is None else min(stop, layer.channels)
            for channel in range(start, end):
                states[(layer.pk, channel)] = status
    return states


def layer_thumbnails(*, layer: Layer, channels: range | None = None) -> dict[int, Thumbnail]:
    """Channel index -> its thumbnail, for ``channels`` (all by default); those without a
    picture carry the state of their job. Two queries."""
    channels = range(layer.channels) if channels is None else channels
    artifacts = Artifact.objects.filter(
        layer=layer, neuron__index__gte=channels.start, neuron__index__lt=channels.stop
    )
    found = _thumbnails(artifacts, "neuron__index")
    if len(found) < len(channels):
        for (_, channel), state in job_states(layers=[layer]).items():
            if channel in channels:
                found.setdefault(channel, Thumbnail(state=state))
    return found


def neuron_thumbnails(*, neurons: Iterable[Neuron]) -> dict[int, Thumbnail]:
    """Neuron id -> its thumbnail (see :class:`Thumbnail`), for those that have a picture.

    Where claims, links and connection lists get their pictures; one query.
    """
    ids = {neuron.pk for neuron in neurons}
    if not ids:
        return {}
    return _thumbnails(Artifact.objects.filter(neuron_id__in=ids), "neuron_id")


def neuron_thumbnail_urls(*, neurons: Iterable[Neuron]) -> dict[int, str]:
    """Neuron id -> the URL of its thumbnail, for those that have one."""
    return {pk: found.url for pk, found in neuron_thumbnails(neurons=neurons).items()}


def render_job_get(*, job_id: int, viewer: AbstractBaseUser | AnonymousUser) -> RenderJob:
    try:
        return render_job_list(viewer=viewer).get(pk=job_id)
    except RenderJob.DoesNotExist:
        raise Http404(f"there is no render job {job_id}") from None


def render_job_list(*, viewer: AbstractBaseUser | AnonymousUser) -> QuerySet[RenderJob]:
    """The jobs ``viewer`` may see: all but others' explorations, which are of private
    photos (their requester and staff see them)."""
    jobs = RenderJob.objects.select_related("model", "layer", "requested_by")
    if not viewer.is_staff:
        others = ~Q(requested_by=viewer.pk) if viewer.is_authenticated else Q()
        jobs = jobs.exclude(Q(kind=EXPLORATION_KIND) & others)
    return jobs.order_by("-created", "-pk")


STRIP = 6  # pictures per layer on a model's map
STRIP_SCAN = 64  # the channels of each layer that the strip picks from


def model_strips(*, model_id: int) -> dict[int, list[tuple[int, Thumbnail]]]:
    """Layer id -> up to STRIP (channel, picture) of its first STRIP_SCAN channels that
    have one, for a model's map; two queries."""
    artifacts = Artifact.objects.filter(layer__model_id=model_id, neuron__index__lt=STRIP_SCAN)
    found = _thumbnails(artifacts, "neuron_id")
    strips: dict[int, list[tuple[int, Thumbnail]]] = {}
    rows = (
        Neuron.objects.filter(pk__in=list(found))
        .order_by("layer_id", "index")
        .values_list("pk", "layer_id", "index")
    )
    for pk, layer_id, index in rows:
        strip = strips.setdefault(layer_id, [])
        if len(strip) < STRIP:
            strip.append((index, found[pk]))
    return strips


@dataclass
class Fired:
    """One channel that fires on an explored image, as its page draws it."""

    neuron: Neuron | None
    channel: int
    peak: float
    heatmap: str
    thumbnail: Thumbnail
    label: Label | None


def exploration_page(exploration: Exploration) -> dict[str, Any]:
    """What an exploration's page shows: per layer, its top channels with their neurons,
    pictures and labels (four queries, whatever the model)."""
    result = exploration.result
    layers = {layer.name: layer for layer in exploration.model.layers.all()}
    wanted = Q()
    for entry in result.get("layers", []):
        layer = layers.get(entry["layer"])
        if layer is not None:
            wanted |= Q(layer=layer, index__in=[c["channel"] for c in entry["channels"]])
    by_pk = {layer.pk: layer for layer in layers.values()}
    neurons: dict[tuple[str, int], Neuron] = {}
    for neuron in Neuron.objects.filter(wanted) if wanted else []:
        neuron.layer = by_pk[neuron.layer_id]
        neuron.layer.model = exploration.model
        neurons[(neuron.layer.name, neuron.index)] = neuron
    thumbnails = neuron_thumbnails(neurons=neurons.values())
    labels = labels_of(neurons.values())
    rows = []
    for entry in result.get("layers", []):
        fired = []
        for c in entry["channels"]:
            neuron = neurons.get((entry["layer"], c["channel"]))
            fired.append(
                Fired(
                    neuron=neuron,
                    channel=c["channel"],
                    peak=c["peak"],
                    heatmap=c["heatmap"],
                    thumbnail=thumbnails.get(neuron.pk, Thumbnail()) if neuron else Thumbnail(),
                    label=labels.get(neuron.pk) if neuron else None,
                )
            )
        rows.append({"layer": layers.get(entry["layer"]), "alias": entry["alias"], "fired": fired})
    return {"exploration": exploration, "upload": exploration.upload, "rows": rows}
