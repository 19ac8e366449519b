from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from render import organisms
from render.evidence import Component, circuit_evidence
from render.hooks import capture
from render.organisms import LayerDecl, Organism
from render.weights import expanded_weights, strongest_inputs

PHOTOS = Path(__file__).resolve().parents[2] / "demo" / "photos"


def tiny_organism(net: nn.Module, layers: dict[str, str]) -> Organism:
    return Organism(
        slug="tiny",
        title="Tiny",
        description="a hand-built network whose circuits are known",
        architecture=lambda: net,
        layers=tuple(LayerDecl(name, name, module) for name, module in layers.items()),
        preprocess=lambda x: x,
        weights_url="",
        weights_filename="",
        input_size=16,
    )


def summing_net() -> nn.Module:
    """Layer a: 8 ReLU channels of a random conv. Target t: channel 0 = a0 + a1 exactly,
    channel 1 = a random mix of a's channels that leaves out a3."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 3, 1), nn.ReLU())
    with torch.no_grad():
        net[0].bias.fill_(0.5)  # most units active
        mix = torch.zeros(3, 8)
        mix[0, :2] = 1.0
        mix[1] = torch.rand(8) + 0.2
        mix[1, 3] = 0.0
        mix[2] = torch.randn(8)
        net[2].weight.copy_(mix[:, :, None, None])
        net[2].bias.zero_()
    return net.eval()


def random_images(n: int = 12, size: int = 12) -> torch.Tensor:
    return torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(1))


def ablated_mean_max(net: nn.Module, module: nn.Module, channels: list[int], x: torch.Tensor):
    """Brute force: the target's mean spatial max with channels of one module zeroed."""

    def zero(_m: nn.Module, _i: object, output: torch.Tensor) -> torch.Tensor:
        output = output.clone()
        output[:, channels] = 0
        return output

    handle = module.register_forward_hook(zero)
    try:
        with torch.no_grad():
            return net(x)[:, 0].amax(dim=(1, 2)).mean().item()
    finally:
        handle.remove()


def test_a_target_that_is_the_sum_of_two_channels_passes_every_test() -> None:
    net = summing_net()
    organism = tiny_organism(net, {"a": "1", "t": "3"})
    images = random_images()

    result = circuit_evidence(
        net, organism, ("t", 0), [("a", 0, 1.0), ("a", 1, 1.0)], images, seed=3
    )

    assert result.supported
    assert [c.rank for c in result.connections] == [1, 2]
    assert [c.strength for c in result.connections] == pytest.approx([1.0, 1.0], abs=1e-5)
    assert [c.sign for c in result.connections] == [1, 1]
    assert [c.percentile for c in result.connections] == [12.5, 25.0]
    ablation = result.ablation
    assert ablation.drop_all == pytest.approx(1.0, abs=1e-6)
    assert ablation.random_drop_mean == pytest.approx(0.0, abs=1e-6)  # a2..a7 do not feed it
    assert ablation.random_draws == 20
    assert ablation.random_at_least == 0.0
    # Each alone removes its own share, as zeroing it by hand does.
    intact = ablated_mean_max(net, net[1], [], images)
    assert ablation.activation == pytest.approx(intact, rel=1e-5)
    for i, drop in enumerate(ablation.drop_each):
        alone = ablated_mean_max(net, net[1], [i], images)
        assert drop == pytest.approx(1 - alone / intact, rel=1e-5)
        assert 0 < drop < 1
    sufficiency = result.sufficiency
    assert sufficiency.r2 == pytest.approx(1.0, abs=1e-6)
    assert sufficiency.r2_claimed == pytest.approx(1.0, abs=1e-6)
    assert sufficiency.coefficients == pytest.approx([1.0, 1.0], abs=1e-5)
    assert sufficiency.samples == 12 * 12 * 12
    assert result.verdict.startswith("a:0 is t:0's #1 input (top 12%), a:1 is its #2 input")
    assert "removes 100% of its activation vs 0% ± 0% for random pairs" in result.verdict


def test_a_channel_the_target_ignores_has_no_connection_and_no_effect() -> None:
    net = summing_net()
    organism = tiny_organism(net, {"a": "1", "t": "3"})

    result = circuit_evidence(
        net, organism, ("t", 1), [Component("a", 3, name="edge")], random_images()
    )

    (connection,) = result.connections
    assert connection.strength == 0.0
    assert connection.rank == 8
    assert result.ablation.drop_all == pytest.approx(0.0, abs=1e-6)
    assert result.ablation.random_drop_mean > 0.05  # any other channel does feed it
    assert result.ablation.random_at_least == 1.0
    assert result.verdict.startswith("edge is t:1's #8 input (top 100%)")


def test_components_may_come_from_several_lower_layers() -> None:
    torch.manual_seed(0)
    net = summing_net()
    copy_layer = nn.Conv2d(8, 8, 1)
    with torch.no_grad():
        copy_layer.weight.copy_(torch.eye(8)[:, :, None, None])
        copy_layer.bias.zero_()
    chain = nn.Sequential(net[0], net[1], copy_layer, nn.ReLU(), net[2], net[3]).eval()
    organism = tiny_organism(chain, {"a": "1", "b": "3", "t": "5"})
    images = random_images()

    result = circuit_evidence(chain, organism, ("t", 0), [("a", 0), ("b", 1)], images)

    assert result.supported
    assert [(c.layer, c.rank, c.inputs) for c in result.connections] == [("a", 1, 8), ("b", 2, 8)]
    assert result.ablation.drop_all == pytest.approx(1.0, abs=1e-6)
    # Zeroing a0 two layers down removes what zeroing b0 (its copy) would.
    intact = ablated_mean_max(chain, chain[3], [], images)
    assert result.ablation.drop_each[0] == pytest.approx(
        1 - ablated_mean_max(chain, chain[3], [0], images) / intact, rel=1e-5
    )
    assert result.sufficiency.r2 == pytest.approx(1.0, abs=1e-6)


def test_components_on_a_finer_grid_are_resampled_to_the_targets() -> None:
    net = summing_net()
    strided = nn.Sequential(net[0], net[1], nn.Conv2d(8, 3, 1, stride=2), nn.ReLU()).eval()
    with torch.no_grad():
        strided[2].weight.copy_(net[2].weight)
        strided[2].bias.zero_()
    organism = tiny_organism(strided, {"a": "1", "t": "3"})

    # Smooth images, as photos are: the resampled neighbourhood then predicts the position.
    smooth = F.interpolate(random_images(size=4), size=12, mode="bilinear")

    result = circuit_evidence(strided, organism, ("t", 0), [("a", 0), ("a", 1)], smooth)

    assert result.sufficiency.samples == 12 * 6 * 6
    assert 0.7 < result.sufficiency.r2 < 1.0
    assert result.ablation.drop_all == pytest.approx(1.0, abs=1e-6)


def test_the_target_can_be_reduced_by_its_spatial_mean() -> None:
    net = summing_net()
    organism = tiny_organism(net, {"a": "1", "t": "3"})
    images = random_images()

    result = circuit_evidence(net, organism, ("t", 0), [("a", 0)], images, reduce="mean")

    with torch.no_grad():
        acts = net(images)[:, 0]
        share = net[1](net[0](images))[:, 0].mean() / acts.mean()
    assert result.ablation.reduce == "mean"
    assert result.ablation.activation == pytest.approx(acts.mean().item(), rel=1e-5)
    # The target is a0 + a1 (both >= 0) before a ReLU that never clips: exact shares.
    assert result.ablation.drop_all == pytest.approx(share.item(), rel=1e-4)


class Skip(nn.Module):
    """The target mixes layer a with the raw input, a tensor from below a."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.relu = nn.ReLU()
        self.mix = nn.Conv2d(4, 2, 1)
        self.skip = nn.Conv2d(3, 2, 1)
        self.out = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.mix(self.relu(self.conv(x))) + self.skip(x))


def test_it_ablates_one_variant_at_a_time_where_a_skip_bypasses_the_layer() -> None:
    torch.manual_seed(0)
    net = Skip().eval()
    with torch.no_grad():
        net.skip.bias.fill_(2.0)  # keeps the target active
    organism = tiny_organism(net, {"a": "relu", "t": "out"})
    images = random_images()

    result = circuit_evidence(net, organism, ("t", 0), [("a", 1), ("a", 2)], images)

    intact = ablated_mean_max(net, net.relu, [], images)
    expected = 1 - ablated_mean_max(net, net.relu, [1, 2], images) / intact
    assert result.ablation.drop_all == pytest.approx(expected, rel=1e-5)
    assert result.ablation.activation == pytest.approx(intact, rel=1e-5)


def test_a_component_that_is_not_below_the_target_is_unsupported() -> None:
    net = summing_net()
    organism = tiny_organism(net, {"a": "1", "t": "3"})

    result = circuit_evidence(net, organism, ("a", 0), [("t", 1, 0.5)], random_images())

    assert not result.supported
    assert "t:1 not in a layer below a:0's" in result.reason
    assert result.verdict == result.reason
    assert result.ablation is None and result.sufficiency is None
    json.dumps(result.to_dict(), allow_nan=False)


def test_it_rejects_channels_and_layers_that_do_not_exist() -> None:
    net = summing_net()
    organism = tiny_organism(net, {"a": "1", "t": "3"})

    with pytest.raises(ValueError, match=r"a has channels 0\.\.7, not 8"):
        circuit_evidence(net, organism, ("t", 0), [("a", 8)], random_images())
    with pytest.raises(ValueError, match="no layer 'z'"):
        circuit_evidence(net, organism, ("t", 0), [("z", 0)], random_images())


def test_it_removes_its_hooks_and_restores_the_model_mode() -> None:
    net = summing_net().train()
    organism = tiny_organism(net, {"a": "1", "t": "3"})

    result = circuit_evidence(net, organism, ("t", 0), [("a", 0)], random_images(n=3))

    assert net.training
    assert all(not m._forward_hooks for m in net.modules())
    text = json.dumps(result.to_dict(), allow_nan=False)
    assert json.loads(text)["connections"][0]["rank"] == 1


@pytest.fixture(scope="module")
def mobilenet() -> tuple[nn.Module, Organism, torch.Tensor]:
    organism = organisms.get("mobilenet_v2")
    loaded = organisms.load(organism, organisms.find_weights(organism, Path("/nonexistent")))
    files = sorted(PHOTOS.glob("*.jpg"))[:8]
    # 160 px instead of 224 keeps the test fast; the network is fully convolutional.
    pixels = [
        np.asarray(Image.open(f).convert("RGB").resize((160, 160)), dtype=np.float32) / 255
        for f in files
    ]
    batch = torch.from_numpy(np.stack(pixels)).permute(0, 3, 1, 2)
    return loaded.model, organism, organism.preprocess(batch)


def test_a_mobilenet_neurons_top_inputs_matter_more_than_random_ones(mobilenet) -> None:
    model, organism, images = mobilenet
    with torch.no_grad(), capture(organism.modules(model, ["features_10"])) as out:
        model(images)
    # The neuron most active on these photos (by spatial max, as the evidence is).
    target = int(out["features_10"].amax(dim=(2, 3)).mean(dim=0).argmax())
    w = expanded_weights(model, organism, "features_10", channels=[target])
    excitatory = [c for c in strongest_inputs(w, target, top=64) if c.sign > 0][:3]

    result = circuit_evidence(
        model,
        organism,
        ("features_10", target),
        [(c.layer, c.channel) for c in excitatory],
        images,
        seed=0,
    )

    assert [c.rank for c in result.connections] == [c.rank for c in excitatory]
    ablation = result.ablation
    assert ablation.drop_all > ablation.random_drop_mean + 2 * ablation.random_drop_std
    assert ablation.random_at_least < 0.1
    assert all(not m._forward_hooks for m in model.modules())


def test_the_random_baseline_is_seeded() -> None:
    net = summing_net()
    organism = tiny_organism(net, {"a": "1", "t": "3"})
    images = random_images(n=4)

    def run(seed: int) -> dict:
        return circuit_evidence(net, organism, ("t", 1), [("a", 3)], images, seed=seed).to_dict()

    first, again, other = run(7), run(7), run(8)

    assert first == again
    assert first["seed"] == 7
    assert first["ablation"]["random_drop_mean"] != other["ablation"]["random_drop_mean"]
