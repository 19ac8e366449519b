from __future__ import annotations

import pytest

from neurons.models import Model
from neurons.references import BadReference, NeuronRef, parse, resolve


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("4c:447", NeuronRef(None, "4c", 447)),
        ("mixed4c:447", NeuronRef(None, "mixed4c", 447)),
        ("inceptionv1/4c:447", NeuronRef("inceptionv1", "4c", 447)),
        (" inceptionv1/mixed4c:0 ", NeuronRef("inceptionv1", "mixed4c", 0)),
        ("mobilenet_v2/features_3:12", NeuronRef("mobilenet_v2", "features_3", 12)),
    ],
)
def test_it_parses_references_as_researchers_write_them(text: str, expected: NeuronRef) -> None:
    assert parse(text) == expected


@pytest.mark.parametrize("text", ["", "4c", "4c:", ":447", "4c:-1", "4c:4.5", "a/b/4c:1", "4c 447"])
def test_it_rejects_malformed_references_with_an_example(text: str) -> None:
    with pytest.raises(BadReference, match=r"not a neuron reference.*e\.g\. 4c:447"):
        parse(text)


@pytest.mark.parametrize("text", ["4c:447", "mixed4c:447", "inceptionv1/4c:447", "mixed4c_0:447"])
def test_every_form_resolves_to_the_same_neuron(inceptionv1: Model, text: str) -> None:
    neuron = resolve(text, model=inceptionv1)
    assert (neuron.layer.model.slug, neuron.layer.name, neuron.index) == (
        "inceptionv1",
        "mixed4c",
        447,
    )
    assert neuron.ref == "inceptionv1/4c:447"
    assert neuron.short_ref == "4c:447"


def test_a_full_reference_needs_no_default_model(inceptionv1: Model) -> None:
    assert resolve("inceptionv1/conv2d0:3").layer.name == "conv2d0"


def test_it_names_an_unknown_layer_and_lists_the_known_ones(inceptionv1: Model) -> None:
    with pytest.raises(BadReference, match=r"unknown layer '4z' in inceptionv1 \(layers: conv2d0"):
        resolve("inceptionv1/4z:1")


def test_it_says_an_index_is_out_of_range_with_the_layers_size(inceptionv1: Model) -> None:
    with pytest.raises(
        BadReference, match=r"index 512 is out of range .* which has 512 channels \(0-511\)"
    ):
        resolve("inceptionv1/4c:512")


def test_it_names_an_unknown_model(no_catalog: None, inceptionv1: Model) -> None:
    with pytest.raises(BadReference, match=r"unknown model 'vgg99' \(models: inceptionv1\)"):
        resolve("vgg99/4c:1")


def test_a_short_reference_without_a_model_is_refused_clearly(inceptionv1: Model) -> None:
    with pytest.raises(BadReference, match="names no model; write it as inceptionv1/4c:447"):
        resolve("4c:447")
    # Written as the model that has the layer, or that none has it.
    with pytest.raises(BadReference, match="write it as mobilenet_v2/f12:83"):
        resolve("f12:83")
    with pytest.raises(BadReference, match="no model here has its layer"):
        resolve("layer9:1")
