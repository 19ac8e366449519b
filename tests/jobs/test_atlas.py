"""The atlas: everything a model's pages need, planned in chunks many workers share, asked
for again without duplicates, counted per layer, and shown at the best tier there is."""

from __future__ import annotations

from io import StringIO
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from pytest_django.fixtures import Settings
from rest_framework.test import APIClient

from jobs import params, selectors, storage
from jobs.atlas import atlas_request, coverage
from jobs.models import Artifact, ArtifactKind, RenderJob
from neurons.models import Model
from tests.jobs.test_render_pages import png


def atlas(*args: str) -> str:
    out = StringIO()
    call_command("atlas", *args, stdout=out, verbosity=0)
    return out.getvalue()


def test_an_atlas_is_planned_in_chunks_and_asking_again_adds_nothing(mobilenet: Model) -> None:
    f0, f1 = mobilenet.layers.get(name="features_0"), mobilenet.layers.get(name="features_1")

    plan = atlas_request(model=mobilenet, layers=[f0, f1], chunk=8, enqueue=False)

    featurevis = [j for j in plan.jobs if j.kind == ArtifactKind.FEATUREVIS]
    spans = sorted((j.layer.name, j.channel_start, j.channel_stop) for j in featurevis)
    assert spans == [("features_0", s, s + 8) for s in range(0, 32, 8)] + [
        ("features_1", s, s + 8) for s in range(0, 16, 8)
    ]
    # Both layers see the image at half its resolution: the preview of a fine layer.
    assert all(j.params == params.featurevis_params(**params.PREVIEW_FINE) for j in featurevis)
    assert {j.kind for j in plan.jobs} == {"featurevis", "examples", "weights"}
    assert plan.missing == 48 and plan.existing == 0
    count = RenderJob.objects.count()
    again = atlas_request(model=mobilenet, layers=[f0, f1], chunk=8, enqueue=False)
    assert RenderJob.objects.count() == count  # the same jobs, joined
    assert {j.pk for j in again.jobs} == {j.pk for j in plan.jobs}
    # Smaller chunks join the queued ones, each listed once.
    smaller = atlas_request(model=mobilenet, layers=[f0], chunk=2, enqueue=False)
    assert RenderJob.objects.count() == count
    # The 4 chunks of 8, and the layer's examples (features_0 has no layer below to weigh).
    assert len(smaller.jobs) == len({j.pk for j in smaller.jobs}) == 5
    assert smaller.missing == 32


def test_the_atlas_command_renders_a_layer_and_reports_its_coverage(
    mobilenet: Model, corpus: Path, settings: Settings
) -> None:
    settings.MICROSCOPE_EXAMPLES_DIR = str(corpus)

    # features_2: the first layer with the common preview, 32 steps (a fine layer's are 128).
    first = atlas("mobilenet_v2", "--layers", "f2", "--chunk", "16", "--sync")

    assert "0 feature visualizations already rendered, 24 to render" in first
    assert "features_2: 24/24 preview, 0/24 full, 24/24 examples" in first
    stored = Artifact.objects.filter(layer__name="features_2", kind=ArtifactKind.FEATUREVIS)
    assert stored.count() == 24  # each channel once
    assert all(params.tier_of(a.params) == "preview" for a in stored)
    again = atlas("mobilenet_v2", "--layers", "f2", "features_2", "--sync")  # one layer
    assert "24 feature visualizations already rendered, 0 to render" in again
    assert stored.count() == 24
    (row,) = [r for r in coverage(model=mobilenet) if r.layer == "features_2"]
    assert (row.preview, row.full, row.examples, row.channels) == (24, 0, 24, 24)
    body = APIClient().get("/api/v1/models/mobilenet_v2/").json()
    assert body["coverage"][2] == {
        "layer": "features_2", "alias": "f2", "channels": 24, "height": 56, "width": 56,
        "examples": 24, "preview": 24, "full": 0,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["mobilenet_v2", "--chunk", "0"], "--chunk must be at least 1"),
        (["mobilenet_v2", "--chunk", "\u0663"], "not a whole number"),  # an Arabic-Indic 3
        (["mobilenet_v2", "--layers", "f99"], "f99"),
        (["mobilenet_v2", "--sync", "--wait"], "not allowed with argument --sync"),
        (["vgg99"], "vgg99"),
    ],
)
def test_the_atlas_command_refuses_bad_input_in_words(
    mobilenet: Model, args: list[str], message: str
) -> None:
    with pytest.raises(CommandError, match=message):
        atlas(*args)
    assert not RenderJob.objects.exists()


def test_pages_show_the_best_tier_there_is_and_say_which(mobilenet: Model) -> None:
    neuron = mobilenet.layers.get(name="features_3").neurons.get(index=2)
    neuron.layer.model = mobilenet
    base = {"kind": "featurevis", "model": "mobilenet_v2", "layer": "features_3", "channel": 2}
    base["weights_sha256"] = mobilenet.weights_sha256
    full_identity = {**base, **params.featurevis_params(), "code_version": "1"}
    preview_identity = {**base, **params.tier_params("preview"), "code_version": "1"}
    full = storage.artifact_create(
        kind=ArtifactKind.FEATUREVIS, neuron=neuron, identity=full_identity, images=[png()]
    )
    storage.artifact_create(  # newer, but a preview
        kind=ArtifactKind.FEATUREVIS, neuron=neuron, identity=preview_identity, images=[png()]
    )

    visuals = selectors.neuron_visuals(neuron=neuron)

    assert visuals.featurevis.pk == full.pk and visuals.featurevis_tier == "full"
    thumbnails = selectors.neuron_thumbnail_urls(neurons=[neuron])
    assert thumbnails[neuron.pk].endswith(full.files[0].rsplit("/", 1)[-1])
    images = APIClient().get("/api/v1/neurons/mobilenet_v2/features_3/2/").json()["images"]
    assert images["featurevis_tier"] == "full"

    # Anyone signed in may ask for a custom render: a newer one of 1 step at 16 px takes
    # the place of neither; one with at least the full tier's steps and size is shown.
    def custom(**budget: int) -> object:
        identity = {**full_identity, **params.featurevis_params(**budget)}
        return storage.artifact_create(
            kind=ArtifactKind.FEATUREVIS, neuron=neuron, identity=identity, images=[png()]
        )

    custom(steps=1, size=16)
    assert selectors.neuron_visuals(neuron=neuron).featurevis.pk == full.pk
    Artifact.objects.filter(pk=full.pk).delete()
    shown = selectors.neuron_visuals(neuron=neuron)
    assert shown.featurevis_tier == "preview"
    assert selectors.neuron_thumbnail_urls(neurons=[neuron])[neuron.pk].endswith(
        shown.featurevis.files[0].rsplit("/", 1)[-1]
    )
    better = custom(steps=1024, size=128)
    assert selectors.neuron_visuals(neuron=neuron).featurevis.pk == better.pk


def test_a_preview_wakes_its_unit_on_the_pre_activation_and_full_keys_stay_as_they_were(
    mobilenet: Model,
) -> None:
    layer = mobilenet.layers.get(name="features_18")
    preview, full = params.tier_params("preview"), params.tier_params("full")

    def identity(wanted: dict[str, object]) -> dict[str, object]:
        return params.featurevis_identity(
            kind=ArtifactKind.FEATUREVIS, layer=layer, channel=5, params=wanted
        )

    assert preview["pre_relu_steps"] == 8 and identity(preview)["pre_relu_steps"] == 8
    # lucent's recipe stores neither field: every full render's key is the one it had.
    assert not {"pre_relu_steps", "upsample"} & (set(full) | set(identity(full)))
    assert params.tier_of({**preview, "pre_relu_steps": 0}) == "custom"  # an older preview
    assert params.tier_of(identity(preview)) == "preview"


def test_a_fine_layer_has_a_preview_of_its_own_and_both_are_the_preview_tier(
    mobilenet: Model,
) -> None:
    f1, f2 = mobilenet.layers.get(name="features_1"), mobilenet.layers.get(name="features_2")
    assert (f1.height, f2.height, mobilenet.input_size) == (112, 56, 224)

    plan = atlas_request(model=mobilenet, layers=[f1, f2], enqueue=False)

    recipes = {j.layer.name: j.params for j in plan.jobs if j.kind == ArtifactKind.FEATUREVIS}
    fine, coarse = recipes["features_1"], recipes["features_2"]
    assert (fine["steps"], fine["lr"]) == (128, 0.5) and coarse == params.tier_params("preview")
    assert {k: v for k, v in fine.items() if k not in ("steps", "lr")} == {
        k: v for k, v in coarse.items() if k not in ("steps", "lr")
    }
    assert params.tier_of(fine) == params.tier_of(coarse) == "preview"
    assert params.tier_of({**fine, "lr": 0.1}) == "custom"
    # Coverage counts each layer's own preview recipe, what asking again would not queue:
    # not the other layer's, nor either with a field changed.
    for layer, recipe, channel in [
        (f1, fine, 0), (f2, coarse, 0), (f1, {**fine, "size": 128}, 1),
        (f2, {**coarse, "pre_relu_steps": 0}, 1), (f1, coarse, 2), (f2, fine, 2),
    ]:  # fmt: skip
        layer.model = mobilenet
        storage.artifact_create(
            kind=ArtifactKind.FEATUREVIS,
            neuron=layer.neurons.get(index=channel),
            identity=params.featurevis_identity(
                kind=ArtifactKind.FEATUREVIS, layer=layer, channel=channel, params=recipe
            ),
            images=[png()],
        )
    counted = {r.layer: r.preview for r in coverage(model=mobilenet)}
    assert (counted["features_1"], counted["features_2"]) == (1, 1)
    again = atlas_request(model=mobilenet, layers=[f1, f2], enqueue=False)
    assert again.existing == 2  # the two that coverage counts


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"pre_relu_steps": "8"}, "pre_relu_steps must be a number"),
        ({"pre_relu_steps": True}, "pre_relu_steps must be a number"),
        ({"steps": 4, "pre_relu_steps": 5}, "pre_relu_steps must be 0 to steps"),
        ({"pre_relu_steps": -1}, "pre_relu_steps must be 0 to steps"),
    ],
)
def test_pre_relu_steps_out_of_bounds_are_refused_by_name(
    given: dict[str, object], message: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        params.featurevis_params(**given)  # type: ignore[arg-type]
    assert message in str(refused.value.message_dict["pre_relu_steps"])


def test_a_command_quotes_a_long_name_back_cut_to_a_line(mobilenet: Model) -> None:
    with pytest.raises(CommandError) as refused:
        atlas("m" * 5000)
    assert str(refused.value).startswith(f"unknown model '{'m' * 80}...' (models: ")
    assert len(str(refused.value)) < 300
