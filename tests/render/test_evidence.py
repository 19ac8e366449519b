"""The evidence of circuit claims, on small hand-built networks whose circuits are known
(an excitatory pair, an inhibitory component, a component that does nothing, a skip
connection, a spatial circuit), then on MobileNetV2's real weights."""

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
from render.weights import expanded_weights

PHOTOS = Path(__file__).resolve().parents[2] / "demo" / "photos"
WIDTH = 32  # channels of layer a: enough random single channels for p = 1/31


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


def known_net() -> nn.Module:
    """Layer a: 32 ReLU channels of a random conv, mostly active. Target t (after a ReLU
    that never clips on these images):

    - t0 = a0 + a1: an excitatory pair;
    - t1 = a0 - 0.5 a2 + 2: a2 inhibits it;
    - t2 = 0.2 * sum of a's channels except a3;
    - t3 never fires (bias -100).
    """
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, WIDTH, 3, padding=1), nn.ReLU(), nn.Conv2d(WIDTH, 4, 1), nn.ReLU()
    )
    with torch.no_grad():
        net[0].bias.fill_(0.5)
        mix = torch.zeros(4, WIDTH)
        mix[0, :2] = 1.0
        mix[1, 0], mix[1, 2] = 1.0, -0.5
        mix[2] = 0.2
        mix[2, 3] = 0.0
        net[2].weight.copy_(mix[:, :, None, None])
        net[2].bias.copy_(torch.tensor([0.0, 2.0, 0.0, -100.0]))
    return net.eval()


def random_images(n: int = 12, size: int = 12, seed: int = 1) -> torch.Tensor:
    return torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


def ablated(net: nn.Module, module: nn.Module, channels: list[int], x: torch.Tensor, t: int = 0):
    """Brute force: the target's mean spatial max with channels of one module zeroed."""

    def zero(_m: nn.Module, _i: object, output: torch.Tensor) -> torch.Tensor:
        output = output.clone()
        output[:, channels] = 0
        return output

    handle = module.register_forward_hook(zero)
    try:
        with torch.no_grad():
            return net(x)[:, t].amax(dim=(1, 2)).mean().item()
    finally:
        handle.remove()


@pytest.fixture(scope="module")
def known() -> tuple[nn.Module, Organism]:
    net = known_net()
    return net, tiny_organism(net, {"a": "1", "t": "3"})


def test_an_excitatory_pair_is_supported_on_every_field(known) -> None:
    net, organism = known
    images, others = random_images(), random_images(seed=2)

    result = circuit_evidence(
        net, organism, ("t", 0), [("a", 0, 1.0), ("a", 1, 1.0)], images,
        random_images=others, seed=3,
    )  # fmt: skip

    assert result.supported and result.outcome == "supported" and result.skip is None
    assert result.random_draws == 100 and result.seed == 3
    # Connections: the two unit weights, ranked first; nothing through a skip.
    for c, channel in zip(result.connections, [0, 1], strict=True):
        assert (c.layer, c.channel, c.coefficient) == ("a", channel, 1.0)
        assert c.strength == pytest.approx(1.0, abs=1e-5)
        assert (c.rank, c.inputs, c.percentile) == (channel + 1, WIDTH, 100 * (channel + 1) / WIDTH)
        assert (c.learned_strength, c.learned_rank) == (c.strength, c.rank)
        assert c.skip is False and c.sign == 1
    # The contribution is the component's activation at the target's peak, averaged.
    with torch.no_grad():
        a = net[1](net[0](images))
        peaks = net(images)[:, 0].flatten(1).argmax(dim=1)
    for c in result.connections:
        at_peak = a[:, c.channel].flatten(1).gather(1, peaks[:, None]).mean().item()
        assert c.contribution == pytest.approx(at_peak, rel=1e-5)

    ablation = result.ablation
    intact = ablated(net, net[1], [], images)
    assert (ablation.images, ablation.count, ablation.reduce) == ("top examples", 12, "max")
    assert ablation.activation == pytest.approx(intact, rel=1e-5)
    assert ablation.drop_all == pytest.approx(1.0, abs=1e-6)
    assert ablation.drop_all_interval == pytest.approx([1.0, 1.0], abs=1e-6)
    for i, test in enumerate(ablation.components):
        drop = 1 - ablated(net, net[1], [i], images) / intact
        assert test.names == [f"a:{i}"] and test.claimed_sign == 1
        assert test.drop == pytest.approx(drop, abs=1e-6) and 0 < drop < 1
        assert test.learned_drop == test.drop and test.learned_interval == test.interval
        assert test.interval[0] <= test.drop <= test.interval[1]
        # Every other channel of a, tried alone, does nothing to t0: the best p there is.
        assert test.baseline.draws == WIDTH - 2 and test.baseline.exhaustive
        base = test.baseline
        assert [base.mean, base.std, base.median, base.q25, base.q75] == pytest.approx(
            [0.0] * 5, abs=1e-6
        )
        assert test.p_value == pytest.approx(1 / (WIDTH - 1))
        assert test.p_opposite == 1.0 and test.p_all_paths is None
        assert test.finding == "agrees" and test.finding_all_paths is None
    (group,) = ablation.groups
    assert group.names == ["a:0", "a:1"] and group.drop == pytest.approx(1.0, abs=1e-6)
    assert group.baseline.draws == 100 and not group.baseline.exhaustive
    assert group.p_value == pytest.approx(1 / 101) and group.finding == "agrees"
    # The random sample is reported apart, with the same tests.
    assert result.ablation_random.images == "random sample"
    assert result.ablation_random.activation == pytest.approx(
        ablated(net, net[1], [], others), rel=1e-5
    )
    assert [t.finding for t in result.ablation_random.components] == ["agrees", "agrees"]

    sufficiency = result.sufficiency
    assert sufficiency.r2 == pytest.approx(1.0, abs=1e-6)
    assert sufficiency.r2_claimed == pytest.approx(1.0, abs=1e-6)
    assert sufficiency.claimed_scale == pytest.approx(1.0, abs=1e-5)
    assert sufficiency.coefficients == pytest.approx([1.0, 1.0], abs=1e-5)
    assert sufficiency.intercept == pytest.approx(0.0, abs=1e-5)
    assert sufficiency.samples == 12 * 12 * 12
    assert result.verdict.startswith(
        "Supported: removing a:0 (claimed excitatory; #1 input, top 3.1%) lowers t:0 by"
    )
    assert "(p = 0.032 vs 30 random channels), as claimed" in result.verdict
    json.dumps(result.to_dict(), allow_nan=False)


def test_the_negated_claim_is_contradicted(known) -> None:
    net, organism = known
    images = random_images()
    claim = circuit_evidence(net, organism, ("t", 0), [("a", 0, 1), ("a", 1, 1)], images)

    negated = circuit_evidence(net, organism, ("t", 0), [("a", 0, -1), ("a", 1, -1)], images)

    assert negated.outcome == "contradicted" and negated.verdict != claim.verdict
    assert negated.verdict.startswith("Contradicted: removing a:0 (claimed inhibitory;")
    assert "against the claim that a:0 inhibits t:0" in negated.verdict
    for test, same in zip(negated.ablation.components, claim.ablation.components, strict=True):
        assert test.claimed_sign == -1 and test.drop == same.drop  # the data do not change
        assert test.finding == "contradicts"
        assert test.p_value == 1.0 and test.p_opposite == pytest.approx(1 / (WIDTH - 1))
    assert negated.sufficiency.r2_claimed == 0.0
    assert negated.sufficiency.claimed_scale == pytest.approx(-1.0, abs=1e-5)
    assert negated.sufficiency.r2 == claim.sufficiency.r2  # free coefficients: same fit


def test_an_inhibitory_component_passes_when_claimed_so(known) -> None:
    net, organism = known
    images = random_images()

    result = circuit_evidence(net, organism, ("t", 1), [("a", 0, 1), ("a", 2, -0.5)], images)

    assert result.outcome == "supported"
    excite, inhibit = result.ablation.components
    intact = ablated(net, net[1], [], images, t=1)
    expected = 1 - ablated(net, net[1], [2], images, t=1) / intact
    assert inhibit.drop == pytest.approx(expected, abs=1e-6)
    assert inhibit.drop < 0 and inhibit.claimed_sign == -1 and inhibit.finding == "agrees"
    assert inhibit.p_value == pytest.approx(1 / (WIDTH - 1))
    assert excite.finding == "agrees"
    assert [c.sign for c in result.connections] == [1, -1]  # from the contribution
    assert "raises t:1 by" in result.verdict
    flipped = circuit_evidence(net, organism, ("t", 1), [("a", 0, 1), ("a", 2, 0.5)], images)
    assert flipped.outcome == "contradicted"
    assert "against the claim that a:2 excites t:1" in flipped.verdict


def test_a_component_that_does_nothing_is_named(known) -> None:
    net, organism = known
    images = random_images()

    result = circuit_evidence(
        net, organism, ("t", 0), [("a", 0), ("a", 1), Component("a", 5, name="idle")], images
    )

    assert result.outcome == "partly supported"
    idle = result.ablation.components[2]
    assert idle.drop == pytest.approx(0.0, abs=1e-6)
    assert idle.finding == "nothing" and idle.p_value == 1.0  # every random channel as good
    assert result.connections[2].strength == 0.0
    assert result.connections[2].rank == 6  # after a0, a1, t0's only inputs; ties by channel
    assert "idle does nothing measurable" in result.verdict
    assert result.verdict.startswith("Partly supported:")


class Residual(nn.Module):
    """An inverted-residual-like block: x + conv(x), flagged as torchvision does."""

    use_res_connect = True

    def __init__(self, width: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(width, width, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x)


def skip_net() -> nn.Module:
    """t = a + conv(a): t3 gets a3 through the skip and 0.5 a5 through the learned path."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, WIDTH, 3, padding=1), nn.ReLU(), Residual(WIDTH))
    with torch.no_grad():
        net[0].bias.fill_(0.5)
        weight = torch.zeros(WIDTH, WIDTH)
        weight[3, 5] = 0.5
        net[2].conv.weight.copy_(weight[:, :, None, None])
    return net.eval()


def test_a_claim_through_the_skip_is_reported_as_such() -> None:
    net = skip_net()
    organism = tiny_organism(net, {"a": "1", "t": "2"})
    images = random_images()

    skip = circuit_evidence(net, organism, ("t", 3), [("a", 3)], images)
    learned = circuit_evidence(net, organism, ("t", 3), [("a", 5)], images)

    assert skip.skip == "a:3" and skip.outcome == "skip only"
    (connection,) = skip.connections
    assert connection.skip and connection.strength == pytest.approx(1.0, abs=1e-6)
    assert connection.learned_strength == pytest.approx(0.0, abs=1e-6)
    (test,) = skip.ablation.components
    assert test.drop > 0.5 and test.learned_drop == pytest.approx(0.0, abs=1e-6)
    assert test.finding == "nothing" and test.finding_all_paths == "agrees"
    assert test.p_all_paths == pytest.approx(1 / WIDTH) and test.p_all_opposite == 1.0
    assert test.baseline.draws == WIDTH - 1  # never the namesake (here the component)
    skip_clause = "a:3 (claimed excitatory; #5 learned-path input, top 16%) reaches t:3 through"
    assert skip.verdict.startswith(f"Skip only: {skip_clause} the identity skip")
    assert "its learned path adds nothing measurable to the skip" in skip.verdict
    # a5 feeds t3 over the learned path: its rank there is 1, the namesake taken out.
    assert learned.outcome == "supported" and learned.skip is None
    assert learned.connections[0].learned_rank == 1 and learned.connections[0].rank == 2
    assert learned.ablation.components[0].baseline.draws == WIDTH - 2


def test_a_spatial_circuit_wheel_below_window_above() -> None:
    """t0 reads a0 one row below its position and a1 one row above: ablation sees the
    circuit, the expanded weights show where, and the pointwise fit misses it."""
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, WIDTH, 3, padding=1), nn.ReLU(), nn.Conv2d(WIDTH, 1, 3, padding=1), nn.ReLU()
    )
    with torch.no_grad():
        net[0].bias.fill_(0.5)
        kernel = torch.zeros(1, WIDTH, 3, 3)
        kernel[0, 0, 2, 1] = 1.0  # wheel: below
        kernel[0, 1, 0, 1] = 1.0  # window: above
        net[2].weight.copy_(kernel)
        net[2].bias.zero_()
    organism = tiny_organism(net.eval(), {"a": "1", "t": "3"})
    images = random_images(size=16)

    result = circuit_evidence(net, organism, ("t", 0), [("a", 0), ("a", 1)], images)

    assert result.outcome == "supported"
    assert [c.rank for c in result.connections] == [1, 2]
    w = expanded_weights(net, organism, "t", channels=[0])
    assert w.row(0).shape[1:] == (3, 1)  # one column: the target reads straight up and down
    assert w.row(0)[0, :, 0].tolist() == [0, 0, 1] and w.row(0)[1, :, 0].tolist() == [1, 0, 0]
    assert result.ablation.drop_all == pytest.approx(1.0, abs=1e-6)
    assert result.sufficiency.r2 < 0.9  # pointwise: the offsets are invisible to the fit


def test_a_layer_with_too_few_other_channels_is_untestable_not_supported() -> None:
    """4 channels, 2 of them components: 2 random channels cannot give p below 1/3."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 1, 1), nn.ReLU())
    with torch.no_grad():
        net[0].bias.fill_(0.5)
        net[2].weight.copy_(torch.tensor([1.0, 1.0, 0.0, 0.0])[None, :, None, None])
        net[2].bias.zero_()
    organism = tiny_organism(net.eval(), {"a": "1", "t": "3"})

    result = circuit_evidence(net, organism, ("t", 0), [("a", 0), ("a", 1)], random_images())

    assert result.outcome == "untestable"
    assert [t.finding for t in result.ablation.components] == ["untestable"] * 2
    assert all(t.drop > 0.1 for t in result.ablation.components)  # the effect is there
    assert "only 2 random channels to compare: p cannot go below 0.333" in result.verdict
    (group,) = result.ablation.groups  # the one other pair there is, once
    assert group.baseline.draws == 1 and group.baseline.exhaustive
    assert group.finding == "untestable"


def test_a_target_that_never_fires_is_silent(known) -> None:
    net, organism = known

    result = circuit_evidence(net, organism, ("t", 3), [("a", 0)], random_images())

    assert result.outcome == "silent"
    assert result.ablation.components[0].drop is None
    assert result.ablation.components[0].finding == "silent"
    assert result.verdict.startswith("Silent: t:3 does not fire")
    json.dumps(result.to_dict(), allow_nan=False)


def test_components_may_come_from_several_lower_layers(known) -> None:
    net, _ = known
    copy_layer = nn.Conv2d(WIDTH, WIDTH, 1)
    with torch.no_grad():
        copy_layer.weight.copy_(torch.eye(WIDTH)[:, :, None, None])
        copy_layer.bias.zero_()
    chain = nn.Sequential(net[0], net[1], copy_layer, nn.ReLU(), net[2], net[3]).eval()
    organism = tiny_organism(chain, {"a": "1", "b": "3", "t": "5"})
    images = random_images()

    result = circuit_evidence(chain, organism, ("t", 0), [("a", 0), ("b", 1)], images)

    # a1 (b1's source) is among a's random channels and matters more than a0 does: a0's
    # p-value is 2/32, not significant, and the claim is only partly supported.
    a0, b1 = result.ablation.components
    assert a0.p_value == pytest.approx(2 / WIDTH) and b1.p_value == pytest.approx(1 / WIDTH)
    assert result.outcome == "partly supported"
    assert [(c.layer, c.rank, c.inputs) for c in result.connections] == [
        ("a", 1, WIDTH),
        ("b", 2, WIDTH),
    ]
    assert result.ablation.drop_all == pytest.approx(1.0, abs=1e-6)
    # Zeroing a0 two layers down removes what zeroing b0 (its copy) would.
    intact = ablated(chain, chain[3], [], images)
    assert result.ablation.components[0].drop == pytest.approx(
        1 - ablated(chain, chain[3], [0], images) / intact, rel=1e-5
    )
    assert result.ablation.groups[0].baseline.draws == 100
    assert result.sufficiency.r2 == pytest.approx(1.0, abs=1e-6)


def test_components_on_a_finer_grid_are_resampled_to_the_targets(known) -> None:
    net, _ = known
    strided = nn.Sequential(net[0], net[1], nn.Conv2d(WIDTH, 4, 1, stride=2), nn.ReLU()).eval()
    with torch.no_grad():
        strided[2].weight.copy_(net[2].weight)
        strided[2].bias.copy_(net[2].bias)
    organism = tiny_organism(strided, {"a": "1", "t": "3"})
    # Smooth images, as photos are: the resampled neighbourhood then predicts the position.
    smooth = F.interpolate(random_images(size=4), size=12, mode="bilinear")

    result = circuit_evidence(strided, organism, ("t", 0), [("a", 0), ("a", 1)], smooth)

    assert result.sufficiency.samples == 12 * 6 * 6
    assert 0.7 < result.sufficiency.r2 < 1.0
    assert result.ablation.drop_all == pytest.approx(1.0, abs=1e-6)
    with torch.no_grad():  # the contribution follows the stride to the peak's input
        a = strided[1](strided[0](smooth))
        peaks = strided(smooth)[:, 0].flatten(1).argmax(dim=1)
        rows, cols = peaks // 6, peaks % 6
        under = a[torch.arange(12), 0, 2 * rows, 2 * cols].mean().item()
    assert result.connections[0].contribution == pytest.approx(under, rel=1e-5)


def test_the_target_can_be_reduced_by_its_spatial_mean(known) -> None:
    net, organism = known
    images = random_images()

    result = circuit_evidence(net, organism, ("t", 0), [("a", 0)], images, reduce="mean")

    with torch.no_grad():
        acts = net(images)[:, 0]
        share = net[1](net[0](images))[:, 0].mean() / acts.mean()
    assert result.ablation.reduce == "mean"
    assert result.ablation.activation == pytest.approx(acts.mean().item(), rel=1e-5)
    # The target is a0 + a1 (both >= 0) before a ReLU that never clips: exact shares.
    assert result.ablation.drop_all == pytest.approx(share.item(), rel=1e-4)


class Bypass(nn.Module):
    """The target mixes layer a with the raw input, a tensor from below a."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, WIDTH, 3, padding=1)
        self.relu = nn.ReLU()
        self.mix = nn.Conv2d(WIDTH, 2, 1)
        self.skip = nn.Conv2d(3, 2, 1)
        self.out = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.mix(self.relu(self.conv(x))) + self.skip(x))


def test_it_ablates_one_variant_at_a_time_where_a_tensor_bypasses_the_layer() -> None:
    torch.manual_seed(0)
    net = Bypass().eval()
    with torch.no_grad():
        net.skip.bias.fill_(2.0)  # keeps the target active
    organism = tiny_organism(net, {"a": "relu", "t": "out"})
    images = random_images(n=6)

    result = circuit_evidence(
        net, organism, ("t", 0), [("a", 1), ("a", 2)], images, random_draws=10
    )

    intact = ablated(net, net.relu, [], images)
    expected = 1 - ablated(net, net.relu, [1, 2], images) / intact
    assert result.ablation.drop_all == pytest.approx(expected, rel=1e-5)
    assert result.ablation.activation == pytest.approx(intact, rel=1e-5)
    assert result.skip is None  # no identity skip: the bypass is a learned conv


def test_a_component_that_is_not_below_the_target_is_unsupported(known) -> None:
    net, organism = known

    result = circuit_evidence(net, organism, ("a", 0), [("t", 1, 0.5)], random_images())

    assert not result.supported and result.outcome == "unsupported"
    assert "t:1 not in a layer below a:0's" in result.reason
    assert result.verdict == result.reason
    assert result.ablation is None and result.sufficiency is None
    json.dumps(result.to_dict(), allow_nan=False)


def test_it_rejects_channels_layers_and_coefficients_that_do_not_exist(known) -> None:
    net, organism = known

    with pytest.raises(ValueError, match=r"a has channels 0\.\.31, not 32"):
        circuit_evidence(net, organism, ("t", 0), [("a", 32)], random_images())
    with pytest.raises(ValueError, match="no layer 'z'"):
        circuit_evidence(net, organism, ("t", 0), [("z", 0)], random_images())
    with pytest.raises(ValueError, match="non-zero"):
        circuit_evidence(net, organism, ("t", 0), [("a", 0, 0.0)], random_images())


def test_it_removes_its_hooks_and_restores_the_model_mode() -> None:
    net = known_net().train()
    organism = tiny_organism(net, {"a": "1", "t": "3"})

    result = circuit_evidence(net, organism, ("t", 0), [("a", 0)], random_images(n=3))

    assert net.training
    assert all(not m._forward_hooks for m in net.modules())
    text = json.dumps(result.to_dict(), allow_nan=False)
    assert json.loads(text)["connections"][0]["rank"] == 1


def test_the_random_baselines_and_the_bootstrap_are_seeded(known) -> None:
    net, organism = known
    images = random_images(n=4)

    def run(seed: int) -> dict:
        components = [("a", 3), ("a", 4)]
        return circuit_evidence(net, organism, ("t", 2), components, images, seed=seed).to_dict()

    first, again, other = run(7), run(7), run(8)

    assert first == again
    assert first["seed"] == 7
    group, other_group = first["ablation"]["groups"][0], other["ablation"]["groups"][0]
    assert group["baseline"] != other_group["baseline"]


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


def test_mobilenets_skip_is_found_and_set_apart(mobilenet) -> None:
    """features_12 = features_11 + a learned path (an inverted residual block)."""
    model, organism, images = mobilenet
    with torch.no_grad(), capture(organism.modules(model, ["features_12"])) as out:
        model(images)
    target = int(out["features_12"].amax(dim=(2, 3)).mean(dim=0).argmax())

    def claim(sign: float) -> object:
        return circuit_evidence(
            model, organism, ("f12", target), [("f11", target, sign)], images, random_draws=20
        )

    through, negated = claim(1.0), claim(-1.0)

    assert through.skip == f"f11:{target}" and through.connections[0].skip
    assert through.connections[0].learned_strength != through.connections[0].strength
    (test,) = through.ablation.components
    assert test.drop > 0.3 and abs(test.learned_drop) < test.drop
    assert test.finding_all_paths == "agrees" and test.p_all_paths == pytest.approx(1 / 21)
    assert through.outcome in ("skip only", "supported", "partly supported")
    assert "through the identity skip" in through.verdict
    assert negated.outcome == "contradicted"
    assert all(not m._forward_hooks for m in model.modules())
