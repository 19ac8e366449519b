"""Tests of a circuit claim ``target = sum_i c_i * component_i``.

Three independent kinds of evidence, each a number a reviewer can weigh:

- **connection**: the expanded weights (:mod:`render.weights`) from each component into
  the target: strength (L2 norm of the kernel), sign, rank among all the channels of the
  component's layer and the percentile that rank puts it in. Components may sit in any
  significant layer below the target's; everything in between is linearized.
- **ablation**: the target's activation on the given images, reduced over positions by
  its spatial **max** (how dataset examples are ranked; ``reduce="mean"`` for the mean)
  and averaged over images. Its *relative drop* when the components' channels are set
  to 0 (all together, and each alone) is ``1 - mean(ablated) / mean(intact)``: a ratio
  of means, because per-image ratios blow up on images where the target is barely
  active. The baseline zeroes as many random channels of the same layers, never the
  components themselves, ``random_draws`` times (seeded): mean, std, and the fraction of
  draws that removed at least as much as the components did.
- **sufficiency**: how much of the target's activation a linear function of the
  components' activations explains: R^2 of a least-squares fit (free coefficients plus
  an intercept) over every image and position of the target's grid, and R^2 of the
  claimed combination ``sum_i c_i * component_i`` (with a fitted scale and intercept).
  A component on a different grid is resampled to the target's (bilinear, antialiased).
  The fit is pointwise: it sees each component at the target's own position, not the
  neighbourhood its kernel covers, so spatially structured circuits score lower here
  than their ablation suggests.

Channels are zeroed by forward hooks on the components' modules, removed afterwards.
All ablations run in one forward pass per chunk of images: the first hooked layer
repeats its output once per variant (intact, all, each, random draws) and applies
each variant's mask, so the layers below it run once. Where a network merges a tensor
from below the component layers with one above them (the batch sizes then disagree),
the variants run one pass each instead.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from render.hooks import stop_after
from render.organisms import LayerDecl, Organism
from render.weights import expanded_weights, input_ranking

__all__ = [
    "AblationEvidence",
    "CircuitEvidence",
    "Component",
    "ConnectionEvidence",
    "SufficiencyEvidence",
    "circuit_evidence",
]


@dataclass(frozen=True)
class Component:
    layer: str
    channel: int
    coefficient: float = 1.0
    name: str | None = None  # how the verdict refers to it; "<alias>:<channel>" by default


@dataclass(frozen=True)
class ConnectionEvidence:
    name: str
    layer: str
    channel: int
    coefficient: float
    strength: float  # L2 norm of the expanded-weight kernel into the target
    sign: int  # +1 excitatory, -1 inhibitory (sign of the kernel's sum)
    rank: int  # 1-based among all channels of `layer`, by strength
    inputs: int  # channels in `layer`
    percentile: float  # 100 * rank / inputs: "top 2%"


@dataclass(frozen=True)
class AblationEvidence:
    reduce: str  # "max" or "mean" over positions
    images: int
    activation: float  # mean over images of the intact target's reduced activation
    drop_all: float | None  # relative drop, all components zeroed; None if not active
    drop_each: list[float | None]  # one per component, zeroed alone
    random_drop_mean: float | None
    random_drop_std: float | None
    random_draws: int
    random_at_least: float | None  # fraction of random draws with drop >= drop_all


@dataclass(frozen=True)
class SufficiencyEvidence:
    samples: int  # images x positions of the target's grid
    r2: float | None  # least-squares fit on the components (None: constant target)
    coefficients: list[float]  # of that fit, one per component
    intercept: float
    r2_claimed: float | None  # fit on sum_i c_i * component_i, with scale and intercept


@dataclass(frozen=True)
class CircuitEvidence:
    target: str
    layer: str
    channel: int
    supported: bool
    reason: str  # why not, when unsupported
    connections: list[ConnectionEvidence]
    ablation: AblationEvidence | None
    sufficiency: SufficiencyEvidence | None
    verdict: str
    seed: int

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types only (no NaN: missing numbers are None)."""
        return dataclasses.asdict(self)


def _as_component(item: Component | Sequence[Any]) -> Component:
    if isinstance(item, Component):
        return item
    return Component(*item)


def _as_batch(images: torch.Tensor | Sequence[torch.Tensor]) -> torch.Tensor:
    batch = images if isinstance(images, torch.Tensor) else torch.stack(list(images))
    if batch.ndim != 4 or batch.shape[0] == 0:
        raise ValueError(f"expected images as a non-empty [N, 3, H, W] batch, got {batch.shape}")
    return batch


def _relative_drop(intact: float, ablated: float) -> float | None:
    if intact <= 1e-8:  # a ratio to a silent neuron means nothing
        return None
    return 1.0 - ablated / intact


def _r2(y: np.ndarray, design: np.ndarray) -> tuple[float | None, np.ndarray]:
    """R^2 of the least-squares fit of y on design (which holds a column of ones)."""
    solution, *_ = np.linalg.lstsq(design, y, rcond=None)
    total = float(((y - y.mean()) ** 2).sum())
    if total <= 1e-12 * max(1.0, float((y**2).sum())):
        return None, solution
    residual = float(((y - design @ solution) ** 2).sum())
    return 1.0 - residual / total, solution


class _Ablation:
    """Runs the model on image chunks with channel masks, one mask set per variant."""

    def __init__(
        self,
        model: nn.Module,
        modules: dict[str, nn.Module],  # component layer -> its module
        target: nn.Module,
        channel: int,
        masks: dict[str, torch.Tensor],  # layer -> [V, C] of 0/1
        keep: dict[str, list[int]],  # layer -> channels whose intact maps to record
    ) -> None:
        self.model, self.modules, self.target, self.channel = model, modules, target, channel
        self.masks, self.keep = masks, keep
        self.variants = next(iter(masks.values())).shape[0]

    def _pass(
        self,
        images: torch.Tensor,
        masks: dict[str, torch.Tensor],
        record: dict[tuple[str, int], torch.Tensor],
    ) -> torch.Tensor:
        """Target channel maps [V, n, H, W] for the V variants in ``masks``."""
        n, variants = images.shape[0], next(iter(masks.values())).shape[0]
        out: dict[str, torch.Tensor] = {}

        def mask_hook(name: str):
            def hook(_m: nn.Module, _i: object, output: torch.Tensor) -> torch.Tensor:
                if output.shape[0] == n:  # the first hooked layer: one copy per variant
                    output = output.unsqueeze(0).expand(variants, *output.shape)
                else:
                    output = output.view(variants, n, *output.shape[1:])
                for c in self.keep[name]:  # variant 0 is intact in its own layer
                    record[name, c] = output[0, :, c].clone()
                output = output * masks[name].to(output)[:, None, :, None, None]
                return output.reshape(variants * n, *output.shape[2:])

            return hook

        def target_hook(_m: nn.Module, _i: object, output: torch.Tensor) -> None:
            maps = output[:, self.channel]
            if maps.shape[0] == n:  # no component layer fed it: every variant is intact
                maps = maps.unsqueeze(0).expand(variants, *maps.shape)
            out["target"] = maps.reshape(variants, n, *output.shape[2:])

        handles = [m.register_forward_hook(mask_hook(name)) for name, m in self.modules.items()]
        handles.append(self.target.register_forward_hook(target_hook))
        try:
            with stop_after(self.target):
                self.model(images)
        finally:
            for handle in handles:
                handle.remove()
        if "target" not in out:
            raise ValueError("the target layer did not run")
        return out["target"]

    def run(
        self, images: torch.Tensor, batch_size: int
    ) -> tuple[torch.Tensor, dict[tuple[str, int], torch.Tensor]]:
        """Target maps [V, N, H, W] and the kept channels' intact maps [N, h, w]."""
        maps: list[torch.Tensor] = []
        records: dict[tuple[str, int], list[torch.Tensor]] = {}
        chunk = max(1, batch_size // self.variants)
        for start in range(0, images.shape[0], chunk):
            part = images[start : start + chunk]
            record: dict[tuple[str, int], torch.Tensor] = {}
            try:
                maps.append(self._pass(part, self.masks, record))
            except RuntimeError as exc:
                if isinstance(exc, torch.OutOfMemoryError):
                    raise
                # Batch sizes disagree somewhere: a skip from below the component layers.
                per_variant = []
                for v in range(self.variants):
                    single = {name: m[v : v + 1] for name, m in self.masks.items()}
                    per_variant.append(self._pass(part, single, record if v == 0 else {}))
                maps.append(torch.cat(per_variant))
            for key, value in record.items():
                records.setdefault(key, []).append(value)
        return torch.cat(maps, dim=1), {k: torch.cat(v) for k, v in records.items()}


def _parts(
    organism: Organism, target: str, components: Sequence[Component | Sequence[Any]]
) -> tuple[LayerDecl, list[Component]]:
    """The target's layer, and the components with canonical layer names and names."""
    try:
        target_decl = organism.layer(target)
        parts = []
        for item in components:
            part = _as_component(item)
            decl = organism.layer(part.layer)
            name = part.name or f"{decl.alias}:{part.channel}"
            parts.append(Component(decl.name, int(part.channel), float(part.coefficient), name))
    except KeyError as exc:
        raise ValueError(f"{organism.slug} has no layer {exc.args[0]!r}") from None
    return target_decl, parts


def _masks(
    variants: list[dict[str, list[int]]], counts: dict[str, int], layers: list[str]
) -> dict[str, torch.Tensor]:
    """Per layer, one row per variant: 0 for each channel that variant zeroes, else 1."""
    masks = {}
    for n in layers:
        mask = torch.ones(len(variants), counts[n])
        for v, zeroed in enumerate(variants):
            mask[v, zeroed.get(n, [])] = 0.0
        masks[n] = mask
    return masks


def circuit_evidence(
    model: nn.Module,
    organism: Organism,
    target: tuple[str, int],
    components: Sequence[Component | Sequence[Any]],
    images: torch.Tensor | Sequence[torch.Tensor],
    *,
    seed: int = 0,
    random_draws: int = 20,
    reduce: Literal["max", "mean"] = "max",
    target_name: str | None = None,
    batch_size: int = 128,
) -> CircuitEvidence:
    """Weigh the claim ``target = sum_i c_i * component_i`` (see the module docstring).

    Args:
        target: (layer, channel) of the neuron the claim explains.
        components: ``Component`` or (layer, channel[, coefficient[, name]]) tuples, in
            significant layers below the target's.
        images: preprocessed [N, 3, H, W] batch (or a list of [3, H, W]); typically the
            target's top dataset examples.
        seed: seeds the random channels of the baseline.
        target_name: how the verdict refers to the target; "<alias>:<channel>" by default.
        batch_size: images x variants per forward pass; bounds memory.

    Returns:
        ``CircuitEvidence``; ``supported`` is False (with a reason) where a component is
        not below the target. The model's train/eval mode is restored afterwards.
    """
    if reduce not in ("max", "mean"):
        raise ValueError(f"reduce must be 'max' or 'mean', not {reduce!r}")
    if not components:
        raise ValueError("a claim needs at least one component")
    target_decl, parts = _parts(organism, target[0], components)
    layer, channel = target_decl.name, int(target[1])
    name = target_name or f"{target_decl.alias}:{channel}"
    if len({(p.layer, p.channel) for p in parts}) != len(parts):
        raise ValueError("a component appears twice")
    depth = organism.layers.index(target_decl)
    above = [p.name for p in parts if organism.layers.index(organism.layer(p.layer)) >= depth]
    if above:
        reason = (
            f"unsupported: {', '.join(map(str, above))} not in a layer below {name}'s ({layer}); "
            "components must come from lower layers"
        )
        return CircuitEvidence(name, layer, channel, False, reason, [], None, None, reason, seed)

    batch = _as_batch(images).to(next(model.parameters()).device)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            target_module = model.get_submodule(target_decl.module)
            modules = {p.layer: model.get_submodule(organism.layer(p.layer).module) for p in parts}
            counts = _channel_counts(model, modules, (layer, target_module), batch[:1])
            for layer_name, index in [(layer, channel)] + [(p.layer, p.channel) for p in parts]:
                if not 0 <= index < counts[layer_name]:
                    top = counts[layer_name] - 1
                    raise ValueError(f"{layer_name} has channels 0..{top}, not {index}")

            connections = _connection_evidence(model, organism, layer, channel, parts, batch.device)
            variants = _variants(parts, counts, np.random.default_rng(seed), random_draws)
            masks = _masks(variants, counts, list(modules))
            keep: dict[str, list[int]] = {n: [] for n in modules}
            for p in parts:
                keep[p.layer].append(p.channel)
            ablate = _Ablation(model, modules, target_module, channel, masks, keep)
            maps, records = ablate.run(batch, batch_size)
    finally:
        model.train(was_training)

    ablation = _ablation_evidence(maps, len(parts), reduce)
    sufficiency = _sufficiency_evidence(maps[0], records, parts)
    verdict = _verdict(name, connections, ablation, sufficiency)
    return CircuitEvidence(
        name, layer, channel, True, "", connections, ablation, sufficiency, verdict, seed
    )


def _channel_counts(
    model: nn.Module,
    modules: dict[str, nn.Module],
    target: tuple[str, nn.Module],
    image: torch.Tensor,
) -> dict[str, int]:
    """Channels of each layer, measured with one image; stops at the target."""
    counts: dict[str, int] = {}

    def count(name: str):
        def hook(_m: nn.Module, _i: object, output: torch.Tensor) -> None:
            counts[name] = output.shape[1]

        return hook

    handles = [m.register_forward_hook(count(name)) for name, m in modules.items()]
    handles.append(target[1].register_forward_hook(count(target[0])))
    try:
        with stop_after(target[1]):
            model(image)
    finally:
        for handle in handles:
            handle.remove()
    if len(counts) != len(modules) + 1:
        raise ValueError("not every layer of the claim ran before the target")
    return counts


def _connection_evidence(
    model: nn.Module,
    organism: Organism,
    layer: str,
    channel: int,
    parts: list[Component],
    device: torch.device,
) -> list[ConnectionEvidence]:
    rankings = {}
    for below in dict.fromkeys(p.layer for p in parts):  # one row per component layer
        w = expanded_weights(model, organism, layer, below=below, channels=[channel], device=device)
        rankings[below] = {c.channel: c for c in input_ranking(w, channel)}
    connections = []
    for part in parts:
        link = rankings[part.layer][part.channel]
        inputs = len(rankings[part.layer])
        connections.append(
            ConnectionEvidence(
                name=str(part.name),
                layer=part.layer,
                channel=part.channel,
                coefficient=part.coefficient,
                strength=link.strength,
                sign=link.sign,
                rank=link.rank,
                inputs=inputs,
                percentile=100.0 * link.rank / inputs,
            )
        )
    return connections


def _variants(
    parts: list[Component], counts: dict[str, int], rng: np.random.Generator, draws: int
) -> list[dict[str, list[int]]]:
    """Channels to zero, by layer: intact, all components, each alone, random draws.

    A random draw takes as many channels from each layer as the claim has there, never a
    component; none are drawn where a layer has too few other channels.
    """
    together: dict[str, list[int]] = {}
    for part in parts:
        together.setdefault(part.layer, []).append(part.channel)
    variants = [{}, together] + [{p.layer: [p.channel]} for p in parts]
    pools = {n: np.setdiff1d(np.arange(counts[n]), chosen) for n, chosen in together.items()}
    if all(len(pools[n]) >= len(chosen) for n, chosen in together.items()):
        for _ in range(draws):
            variants.append(
                {
                    n: rng.choice(pools[n], size=len(chosen), replace=False).tolist()
                    for n, chosen in together.items()
                }
            )
    return variants


def _ablation_evidence(maps: torch.Tensor, components: int, reduce: str) -> AblationEvidence:
    """From the target's maps [V, N, H, W] in the order of ``_variants``."""
    flat = maps.flatten(2).double().cpu()
    reduced = flat.amax(dim=2) if reduce == "max" else flat.mean(dim=2)
    means = reduced.mean(dim=1).tolist()  # per variant
    intact = means[0]
    drop_all = _relative_drop(intact, means[1])
    random = [_relative_drop(intact, m) for m in means[2 + components :]]
    numbers = np.array([d for d in random if d is not None])
    has_random = numbers.size > 0
    return AblationEvidence(
        reduce=reduce,
        images=int(maps.shape[1]),
        activation=intact,
        drop_all=drop_all,
        drop_each=[_relative_drop(intact, m) for m in means[2 : 2 + components]],
        random_drop_mean=float(numbers.mean()) if has_random else None,
        random_drop_std=float(numbers.std()) if has_random else None,
        random_draws=len(random),
        random_at_least=(
            float((numbers >= drop_all - 1e-9).mean())
            if has_random and drop_all is not None
            else None
        ),
    )


def _sufficiency_evidence(
    target_maps: torch.Tensor,
    records: dict[tuple[str, int], torch.Tensor],
    parts: list[Component],
) -> SufficiencyEvidence:
    """Pointwise linear fits of the intact target [N, H, W] on the components."""
    target_maps = target_maps.double().cpu()
    grid = tuple(target_maps.shape[1:])
    columns = []
    for part in parts:
        act = records[part.layer, part.channel][:, None].double().cpu()  # [N, 1, h, w]
        if tuple(act.shape[2:]) != grid:
            act = F.interpolate(act, size=grid, mode="bilinear", antialias=True)
        columns.append(act.flatten().numpy())
    y = target_maps.flatten().numpy()
    comps = np.stack(columns, axis=1)
    ones = np.ones((y.shape[0], 1))
    r2, solution = _r2(y, np.hstack([comps, ones]))
    claimed = comps @ np.array([p.coefficient for p in parts], dtype=np.float64)
    r2_claimed, _ = _r2(y, np.hstack([claimed[:, None], ones]))
    return SufficiencyEvidence(
        samples=int(y.shape[0]),
        r2=r2,
        coefficients=[float(c) for c in solution[:-1]],
        intercept=float(solution[-1]),
        r2_claimed=r2_claimed,
    )


def _percent(fraction: float) -> str:
    return f"{100 * fraction:.0f}%"


def _top(percentile: float) -> str:
    return f"top {percentile:.1f}%" if percentile < 10 else f"top {percentile:.0f}%"


def _verdict(
    target: str,
    connections: list[ConnectionEvidence],
    ablation: AblationEvidence,
    sufficiency: SufficiencyEvidence,
) -> str:
    """One line a person reads first, e.g. "4b:373 is 4c:447's #3 input (top 0.6%); ..."."""
    links = []
    for i, c in enumerate(connections):
        kind = "" if c.sign > 0 else " inhibitory"
        subject = f"{target}'s" if i == 0 else "its"
        links.append(f"{c.name} is {subject} #{c.rank}{kind} input ({_top(c.percentile)})")
    sentence = ", ".join(links)
    k = len(connections)
    together = "it" if k == 1 else ("both" if k == 2 else f"all {k}")
    if ablation.drop_all is None:
        sentence += f"; {target} is not active on these images, so ablation says nothing"
    else:
        sentence += f"; ablating {together} removes {_percent(ablation.drop_all)} of its activation"
        if ablation.random_drop_mean is not None:
            sets = {1: "single channels", 2: "pairs", 3: "triples"}.get(k, f"sets of {k}")
            sentence += (
                f" vs {_percent(ablation.random_drop_mean)} ± "
                f"{_percent(ablation.random_drop_std or 0.0)} for random {sets}"
            )
    if sufficiency.r2 is not None:
        sentence += f"; a linear fit on them explains R² {sufficiency.r2:.2f}"
    return sentence
