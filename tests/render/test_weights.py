from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from lucent.modelzoo.inceptionv1 import helper_layers
from PIL import Image
from torch import nn

from render import organisms
from render.hooks import capture, stop_after
from render.organisms import LayerDecl, Organism
from render.weights import (
    ExpandedWeights,
    contribution_maps,
    expanded_weights,
    heatmap_png,
    identity_skip,
    input_ranking,
    linearized_copy,
    peak_contributions,
    strongest_inputs,
    strongest_outputs,
)


def tiny_organism(net: nn.Module, layers: dict[str, str], input_size: int = 16) -> Organism:
    return Organism(
        slug="tiny",
        title="Tiny",
        description="a hand-built network whose expanded weights are known",
        architecture=lambda: net,
        layers=tuple(LayerDecl(name, name, module) for name, module in layers.items()),
        preprocess=lambda x: x,
        weights_url="",
        weights_filename="",
        input_size=input_size,
    )


def seeded(module: nn.Module, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    for param in module.parameters():
        nn.init.normal_(param)
    return module.eval()


@pytest.fixture(scope="module")
def mobilenet() -> nn.Module:
    organism = organisms.get("mobilenet_v2")
    return organisms.load(organism, organisms.find_weights(organism, Path("/nonexistent"))).model


def matrix(conv: nn.Conv2d) -> torch.Tensor:
    return conv.weight.detach()[:, :, 0, 0]


@pytest.mark.parametrize(("kernel", "stride"), [(3, 1), (3, 2), (5, 2)])
def test_a_single_convolution_has_its_kernel_as_expanded_weights(kernel: int, stride: int) -> None:
    net = seeded(
        nn.Sequential(
            nn.Conv2d(3, 4, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(4, 5, kernel, stride=stride, padding=kernel // 2),
        )
    )
    organism = tiny_organism(net, {"a": "1", "b": "2"})

    w = expanded_weights(net, organism, "b")

    assert (w.layer, w.below, w.channels) == ("b", "a", (0, 1, 2, 3, 4))
    assert w.weights.dtype == np.float32
    np.testing.assert_allclose(w.weights, net[2].weight.detach().numpy(), atol=1e-6)


def test_two_1x1_convolutions_with_a_relu_between_multiply() -> None:
    net = seeded(
        nn.Sequential(
            nn.Conv2d(3, 4, 1), nn.ReLU(), nn.Conv2d(4, 6, 1), nn.ReLU6(), nn.Conv2d(6, 5, 1)
        )
    )
    organism = tiny_organism(net, {"a": "1", "m": "3", "b": "4"})

    w = expanded_weights(net, organism, "b", below="a", channels=[4, 1])

    product = (matrix(net[4]) @ matrix(net[2]))[[4, 1]]
    assert w.weights.shape == (2, 4, 1, 1)
    np.testing.assert_allclose(w.weights[:, :, 0, 0], product.numpy(), rtol=1e-5, atol=1e-5)
    # Without `below`, the layer directly below is used.
    assert expanded_weights(net, organism, "b").below == "m"


class Branches(nn.Module):
    """An inception-like block: 1x1 | 1x1 -> relu -> 3x3 | lucent's -inf pad + max pool
    -> 1x1 | torch max pool -> 1x1, concatenated."""

    def __init__(self, c_in: int = 3) -> None:
        super().__init__()
        self.one = nn.Conv2d(c_in, 2, 1)
        self.bottleneck = nn.Conv2d(c_in, 4, 1)
        self.relu = helper_layers.ReluLayer()
        self.three = nn.Conv2d(4, 2, 3, padding=1)
        self.lucent_pool = helper_layers.MaxPool2dLayer()
        self.lucent_reduce = nn.Conv2d(c_in, 2, 1)
        self.torch_pool = nn.MaxPool2d(3, stride=1, padding=1)
        self.torch_reduce = nn.Conv2d(c_in, 2, 1)
        self.cat = helper_layers.CatLayer()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        padded = F.pad(x, (1, 1, 1, 1), value=float("-inf"))
        pooled = self.lucent_pool(padded, kernel_size=(3, 3), stride=(1, 1), padding=0)
        return self.cat(
            (
                self.one(x),
                self.three(self.relu(self.bottleneck(x))),
                self.lucent_reduce(pooled),
                self.torch_reduce(self.torch_pool(x)),
            ),
            1,
        )


def test_branches_are_linearized_as_the_circuits_work_does() -> None:
    net = seeded(nn.Sequential(nn.Conv2d(3, 3, 3, padding=1), nn.ReLU(), Branches()))
    organism = tiny_organism(net, {"a": "1", "mixed": "2"})

    w = expanded_weights(net, organism, "mixed").weights

    block = net[2]
    expected = np.zeros((8, 3, 3, 3), dtype=np.float32)
    # 1x1 branch: the centre tap only.
    expected[0:2, :, 1, 1] = matrix(block.one).numpy()
    # bottleneck -> ReLU (as identity) -> 3x3: each tap is a matrix product.
    expected[2:4] = torch.einsum(
        "omyx,mi->oiyx", block.three.weight.detach(), matrix(block.bottleneck)
    ).numpy()
    # Max pools become 3x3 average pools: the 1x1 conv spread evenly over nine taps.
    expected[4:6] = (matrix(block.lucent_reduce) / 9).numpy()[:, :, None, None]
    expected[6:8] = (matrix(block.torch_reduce) / 9).numpy()[:, :, None, None]
    assert np.isfinite(w).all()
    np.testing.assert_allclose(w, expected, rtol=1e-5, atol=1e-6)


def bn_scale(bn: nn.BatchNorm2d) -> torch.Tensor:
    return bn.weight / torch.sqrt(bn.running_var + bn.eps)


def inverted_residual_weights(block: nn.Module) -> np.ndarray:
    """MobileNetV2's expand -> depthwise -> project with BatchNorm folded in, plus the skip."""
    expand, depthwise, project, project_bn = block.conv
    e = matrix(expand[0]) * bn_scale(expand[1])[:, None]
    d = depthwise[0].weight[:, 0] * bn_scale(depthwise[1])[:, None, None]
    p = matrix(project) * bn_scale(project_bn)[:, None]
    kernel = torch.einsum("cm,myx,mi->ciyx", p, d, e)
    if block.use_res_connect:
        kernel[:, :, 1, 1] += torch.eye(kernel.shape[0])
    return kernel.detach().numpy()


@pytest.mark.parametrize("layer", ["features_3", "features_4", "features_10"])
def test_it_matches_batchnorm_algebra_on_mobilenet_blocks(mobilenet: nn.Module, layer: str) -> None:
    organism = organisms.get("mobilenet_v2")
    block = mobilenet.get_submodule(organism.layer(layer).module)

    w = expanded_weights(mobilenet, organism, layer)

    expected = inverted_residual_weights(block)
    np.testing.assert_allclose(w.weights, expected, rtol=1e-4, atol=1e-5)


def test_strongest_inputs_rank_every_input_once_as_brute_force_does(mobilenet: nn.Module) -> None:
    organism = organisms.get("mobilenet_v2")
    w = expanded_weights(mobilenet, organism, "features_10", channels=[7, 30])
    expected = inverted_residual_weights(mobilenet.features[10])

    for row, channel in enumerate((7, 30)):
        ranking = input_ranking(w, channel)
        assert [c.rank for c in ranking] == list(range(1, 65))
        assert sorted(c.channel for c in ranking) == list(range(64))
        brute = np.sqrt((expected[channel] ** 2).sum(axis=(1, 2)))
        assert [c.channel for c in ranking[:10]] == list(np.argsort(-brute)[:10])
        top = strongest_inputs(w, channel, top=3)
        assert [c.channel for c in top] == [c.channel for c in ranking[:3]]
        for connection in top:
            kernel = expected[channel, connection.channel]
            assert connection.layer == "features_9"
            assert connection.strength == pytest.approx(np.linalg.norm(kernel), rel=1e-4)
            assert connection.sign == (1 if kernel.sum() >= 0 else -1)
        assert w.weights[row].shape == (64, 3, 3)


def test_it_agrees_with_a_gradient_on_the_full_inceptionv1_grid() -> None:
    organism = organisms.get("inceptionv1")
    torch.manual_seed(0)
    model = organism.architecture().eval()
    channels = [5, 100, 250]  # the 1x1, 3x3 and pool branches of mixed3b

    w = expanded_weights(model, organism, "mixed3b", channels=channels)

    # Brute force: one channel at a time, the gradient over the whole grid of mixed3a.
    lin = linearized_copy(model)
    stored: dict[str, torch.Tensor] = {}

    def replace(_m: nn.Module, _i: object, output: torch.Tensor) -> torch.Tensor:
        stored["x"] = torch.zeros_like(output, requires_grad=True)
        return stored["x"]

    def keep(_m: nn.Module, _i: object, output: torch.Tensor) -> None:
        stored["y"] = output
        raise StopIteration  # the head does not fit a small input; nothing above is needed

    handles = [lin.mixed3a.register_forward_hook(replace), lin.mixed3b.register_forward_hook(keep)]
    with pytest.raises(StopIteration):
        lin(torch.zeros(1, 3, 128, 128))  # mixed3a: 16x16, wide enough for a 5x5 field
    for handle in handles:
        handle.remove()
    y = stored["y"]
    centre = y.shape[2] // 2
    for row, channel in enumerate(channels):
        output = y[0, channel, centre, centre]
        (grad,) = torch.autograd.grad(output, stored["x"], retain_graph=True)
        grad = grad[0].numpy()
        np.testing.assert_allclose(
            np.sqrt((w.weights[row] ** 2).sum(axis=(1, 2))),
            np.sqrt((grad**2).sum(axis=(1, 2))),
            rtol=1e-4,
            atol=1e-7,
        )
        np.testing.assert_allclose(
            w.weights[row].sum(axis=(1, 2)), grad.sum(axis=(1, 2)), atol=1e-6
        )
    assert w.weights.shape[2:] == (5, 5)  # the 5x5 branch sets the extent


def test_strongest_outputs_read_a_column_of_the_layer_above() -> None:
    net = seeded(nn.Sequential(nn.Conv2d(3, 4, 1), nn.ReLU(), nn.Conv2d(4, 6, 1)))
    organism = tiny_organism(net, {"a": "1", "b": "2"})
    w = expanded_weights(net, organism, "b")

    outputs = strongest_outputs(w, channel=2, top=6)

    column = matrix(net[2])[:, 2].numpy()
    assert [c.channel for c in outputs] == list(np.argsort(-np.abs(column)))
    assert [c.rank for c in outputs] == list(range(1, 7))
    assert all(c.layer == "b" for c in outputs)
    assert [c.sign for c in outputs] == [int(np.sign(column[c.channel])) for c in outputs]


def test_it_removes_every_hook_and_leaves_the_model_as_it_was(mobilenet: nn.Module) -> None:
    net = seeded(nn.Sequential(nn.Conv2d(3, 3, 3, padding=1), nn.ReLU(inplace=True), Branches()))
    net.train()
    models = [(net, tiny_organism(net, {"a": "1", "mixed": "2"}), "mixed")]
    models.append((mobilenet, organisms.get("mobilenet_v2"), "features_5"))
    for model, organism, layer in models:
        before = {k: v.clone() for k, v in model.state_dict().items()}
        kinds = [type(m) for m in model.modules()]
        modes = [m.training for m in model.modules()]
        grads = [p.requires_grad for p in model.parameters()]

        expanded_weights(model, organism, layer, channels=[0])

        assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())
        assert [type(m) for m in model.modules()] == kinds
        assert [m.training for m in model.modules()] == modes
        assert [p.requires_grad for p in model.parameters()] == grads
        after = model.state_dict()
        assert all(torch.equal(before[k], after[k]) for k in before)


def test_it_refuses_a_layer_that_is_not_below() -> None:
    net = seeded(nn.Sequential(nn.Conv2d(3, 4, 1), nn.ReLU(), nn.Conv2d(4, 6, 1)))
    organism = tiny_organism(net, {"a": "1", "b": "2"})

    with pytest.raises(ValueError, match="not below"):
        expanded_weights(net, organism, "a", below="b")
    with pytest.raises(ValueError, match="lowest"):
        expanded_weights(net, organism, "a")
    with pytest.raises(ValueError, match=r"channels 0\.\.5"):
        expanded_weights(net, organism, "b", channels=[6])


def test_heatmaps_show_excitation_in_red_and_inhibition_in_blue() -> None:
    kernel = np.array([[1.0, 0.0, -0.5]])

    image = Image.open(io.BytesIO(heatmap_png(kernel, size=48))).convert("RGB")

    assert image.size == (48, 16)
    pixels = np.asarray(image).astype(int)
    assert tuple(pixels[8, 8]) == (255, 0, 0)
    assert tuple(pixels[8, 24]) == (255, 255, 255)
    red, green, blue = pixels[8, 40]
    assert blue == 255 and red == green and 100 < red < 155  # half strength, symmetric scale


SKIPS = [
    ("features_12", "features_11"),  # an inverted residual with its identity skip
    ("features_13", "features_11"),  # two of them in a chain
    ("features_12", "features_10"),  # features_11 widens 64 -> 96: no skip there
    ("features_14", "features_13"),  # stride 2 and wider: no skip
]


@pytest.mark.parametrize(("layer", "below"), SKIPS)
def test_it_finds_identity_skips_from_the_module_graph(
    mobilenet: nn.Module, layer: str, below: str
) -> None:
    organism = organisms.get("mobilenet_v2")
    upper = mobilenet.get_submodule(organism.layer(layer).module)
    lower = mobilenet.get_submodule(organism.layer(below).module)
    expected = all(
        mobilenet.features[i].use_res_connect
        for i in range(int(below.split("_")[1]) + 1, int(layer.split("_")[1]) + 1)
    )

    found = identity_skip(mobilenet, lower, upper, torch.zeros(1, 3, 64, 64))

    assert found == expected
    assert found is ((layer, below) in SKIPS[:2])


@pytest.mark.parametrize("layer", ["features_10", "features_12"])
def test_the_learned_path_is_the_block_without_its_skip(mobilenet: nn.Module, layer: str) -> None:
    organism = organisms.get("mobilenet_v2")
    block = mobilenet.get_submodule(organism.layer(layer).module)
    assert block.use_res_connect
    w = expanded_weights(mobilenet, organism, layer, channels=[0, 5])

    expected = inverted_residual_weights(block)  # with the skip's identity at the centre
    expected[:, :, 1, 1] -= np.eye(expected.shape[0])

    assert w.centre == (1, 1)
    np.testing.assert_allclose(w.learned_row(5), expected[5], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(w.learned_row(0), expected[0], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    ("layer", "below"), [("features_4", "features_2"), ("features_14", "features_13")]
)
def test_peak_contributions_are_the_linearized_gradient_times_input(
    mobilenet: nn.Module, layer: str, below: str
) -> None:
    """Through strides and several blocks: what the expanded weights say each input adds
    at the target's peak equals autograd's gradient times input on the linearized network,
    for peaks away from the border (there, padding inside the path cuts some of the
    kernel's paths; the contribution still counts them)."""
    organism = organisms.get("mobilenet_v2")
    images = torch.randn(3, 3, 160, 160, generator=torch.Generator().manual_seed(0))
    modules = organism.modules(mobilenet, [layer, below])
    with torch.no_grad(), capture(modules) as out:
        mobilenet(images)
    channel = 5
    w = expanded_weights(mobilenet, organism, layer, below=below, channels=[channel])
    peaks = torch.zeros_like(out[layer][:, channel])  # one interior peak per image
    for i, (row, col) in enumerate([(2, 3), (3, 2), (2, 2)]):
        peaks[i, row, col] = 1.0

    mine = peak_contributions(w, w.row(channel), out[below], peaks)

    lin = linearized_copy(mobilenet)
    lin_modules = organism.modules(lin, [layer, below])
    x = out[below].clone().requires_grad_(True)
    seen = {}
    handles = [
        lin_modules[below].register_forward_hook(lambda _m, _i, _o: x),
        lin_modules[layer].register_forward_hook(lambda _m, _i, o: seen.update(y=o)),
    ]
    with torch.enable_grad(), stop_after(lin_modules[layer]):
        lin(images)
    for handle in handles:
        handle.remove()
    picked = (seen["y"][:, channel] * peaks).sum()
    (grad,) = torch.autograd.grad(picked, x)
    expected = (grad * x).sum(dim=(2, 3)).mean(dim=0).detach().numpy()
    np.testing.assert_allclose(mine.sum(axis=(1, 2)), expected, rtol=1e-4, atol=1e-6)


def test_signs_and_heatmaps_follow_the_contribution_on_the_data() -> None:
    """The same positive kernel on an input that is positive at the upper unit's peak and
    on one that is negative there: the second lowers the unit, so it is inhibitory, and its
    heat map is drawn blue: label and picture agree."""
    kernel = np.zeros((2, 3, 3), dtype=np.float32)
    kernel[:, 1, 1] = 1.0
    w = ExpandedWeights("t", "a", kernel[None], (0,), centre=(1, 1), box_at=(1, 1), upper_at=(2, 2))
    below = torch.zeros(1, 2, 5, 5)
    below[0, 0, 2, 3], below[0, 1, 2, 3] = 0.7, -0.7
    above = torch.zeros(1, 1, 5, 5)
    above[0, 0, 2, 3] = 1.0  # the unit peaks right above them

    maps = contribution_maps(w, below, above)
    positive, negative = input_ranking(w, 0, maps[0])

    assert maps[0].sum(axis=(1, 2)) == pytest.approx([0.7, -0.7])
    assert (positive.channel, positive.sign) == (0, 1)
    assert (negative.channel, negative.sign) == (1, -1)
    for connection in (positive, negative):
        rgb = np.asarray(Image.open(io.BytesIO(heatmap_png(connection.drawn, 9))), dtype=float)
        red_minus_blue = (rgb[..., 0] - rgb[..., 2]).sum()
        assert np.sign(red_minus_blue) == connection.sign
    (down,) = strongest_outputs(w, 1, contributions=maps)
    assert down.sign == -1


class Leaky(nn.Module):
    """A 3x3 convolution plus a 7x7 one a billion times weaker, as cuDNN's algorithms leave
    tiny values where a kernel is zero."""

    def __init__(self) -> None:
        super().__init__()
        self.main = nn.Conv2d(2, 2, 3, padding=1)
        self.leak = nn.Conv2d(2, 2, 7, padding=3, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x) + 1e-9 * self.leak(x)


def test_the_receptive_field_ignores_values_a_million_times_below_the_largest() -> None:
    net = seeded(nn.Sequential(nn.Conv2d(3, 2, 1), nn.ReLU(), Leaky()))
    organism = tiny_organism(net, {"a": "1", "t": "2"}, input_size=32)

    w = expanded_weights(net, organism, "t")

    assert w.weights.shape == (2, 2, 3, 3)
    np.testing.assert_allclose(w.weights, net[2].main.weight.detach().numpy(), rtol=1e-5)
