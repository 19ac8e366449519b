"""Tests of a circuit claim ``target = sum_i c_i * component_i``.

A claim says more than "these channels matter": each coefficient's sign says whether its
component excites the target (removing it should lower the target) or inhibits it
(removing it should raise the target). Every number below is computed from the model on
images; README's "Evidence" section says what each one means and where it stops.

- **connection**: the expanded weights (:mod:`render.weights`) from each component into
  the target: strength (L2 norm of the kernel), rank among all the channels of the
  component's layer, and its *contribution*: the kernel times the component's activation
  under the target's receptive field at the target's peak, averaged over the top
  examples (the linearized path's gradient times input); its sign is the connection's.
  Where the target's block has an identity skip (MobileNetV2's inverted residuals), the
  target's namesake below reaches it through the skip: its strength and rank are also
  given over the learned path alone (the skip's 1 taken out).
- **ablation**, over each image set (the target's top dataset examples; a random sample
  of the corpus, reported apart): the target's activation reduced over positions by its
  spatial max (``reduce="mean"`` for the mean) and averaged over images. Zeroing channels
  changes it by a *relative drop* ``1 - mean(ablated) / mean(intact)`` (negative: it
  rises), with a 95% bootstrap interval over images. Each component is zeroed alone, and
  the components of one claimed sign together. Each is compared with random channels of
  the same layers (never a component, never the target's skip namesake): single channels
  for a component (every eligible one where there are few), sets of the same size for a
  group. The p-value is ``(k + 1) / (n + 1)``, ``k`` of ``n`` random draws changing the
  target at least as much in the claimed direction. A skip namesake's effect is also
  measured over its learned path alone: the skip's copy of it is added back.
- **sufficiency**: R^2 of a least-squares fit of the target on the components' activations
  (free coefficients plus an intercept) over every image and position of the target's
  grid, and R^2 of the claimed combination ``sum_i c_i * component_i`` with a scale that
  may not be negative (``claimed_scale`` is the unconstrained one: negative where the
  claim has the signs backwards). A component on a different grid is resampled to the
  target's (bilinear, antialiased). The fit is pointwise, so spatially structured circuits
  score lower here than their ablation suggests.

Findings: a component or group *agrees* where its p-value is at most ``ALPHA`` and its
bootstrap interval excludes zero on the claimed side; it *contradicts* the claim where the
same holds on the opposite side; else it does *nothing* measurable; it is *untestable*
where its layer has too few other channels for p to reach ``ALPHA`` (fewer than 19). The
outcome: supported (everything agrees), partly supported (some agree, the rest do
nothing), contradicted (something contradicts), skip only (only a skip namesake agrees,
and only through the skip), untestable, not supported, or silent (the target does not
fire on the images: its mean spatial max is not positive).

Channels are zeroed by forward hooks on the components' modules, removed afterwards. All
variants (intact, each test, every random draw) run in one forward pass per chunk of
images: the first hooked layer repeats its output once per variant and applies each
variant's mask, so the layers below it run once. Where a network merges a tensor from
below the component layers with one above them (the batch sizes then disagree), the
variants run one pass each instead.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from render.hooks import stop_after
from render.organisms import LayerDecl, Organism
from render.weights import expanded_weights, identity_skip, input_ranking, peak_contributions

__all__ = [
    "ALPHA",
    "AblationEvidence",
    "Baseline",
    "CircuitEvidence",
    "Component",
    "ConnectionEvidence",
    "SufficiencyEvidence",
    "Test",
    "circuit_evidence",
]

ALPHA = 0.05  # the p-value at or under which an effect counts
BOOTSTRAP = 1000  # resamples of the images for each interval
AGREES, CONTRADICTS, NOTHING, SILENT = "agrees", "contradicts", "nothing", "silent"
# Too few random channels to reach ALPHA: the smallest p, 1/(n+1), is above it.
UNTESTABLE = "untestable"


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
    strength: float  # L2 norm of the expanded-weight kernel into the target, all paths
    rank: int  # 1-based among all channels of `layer`, by strength
    inputs: int  # channels in `layer`
    percentile: float  # 100 * rank / inputs: "top 2%"
    skip: bool  # the target's namesake, reaching it through an identity skip
    learned_strength: float  # the same over the learned path alone (= strength, no skip)
    learned_rank: int
    learned_percentile: float
    # What it adds to the target at the target's peak, by the learned path's expanded
    # weights: kernel times the input there, averaged over the top examples.
    contribution: float
    sign: int  # sign of contribution: +1 excitatory on the data, -1 inhibitory


@dataclass(frozen=True)
class Baseline:
    """Random channels (or channel sets) of the same layers, zeroed instead."""

    draws: int
    exhaustive: bool  # every eligible channel (or channel set) was tried
    mean: float
    std: float
    median: float
    q25: float
    q75: float


@dataclass(frozen=True)
class Test:
    """Zeroing one component, or the components of one claimed sign together."""

    names: list[str]
    claimed_sign: int  # +1: removing should lower the target; -1: should raise it
    drop: float | None  # relative drop, all paths; None where the target is silent
    interval: list[float] | None  # 95% bootstrap interval of drop over images
    learned_drop: float | None  # the skip's copy added back (= drop without a skip)
    learned_interval: list[float] | None
    baseline: Baseline | None  # None where a layer has no other channel to draw
    p_value: float | None  # of learned_drop in the claimed direction
    p_opposite: float | None  # the same in the opposite direction
    p_all_paths: float | None  # of drop, where a skip namesake is in it (else None)
    p_all_opposite: float | None  # the same in the opposite direction
    finding: str  # over the learned path: agrees, contradicts, nothing, silent
    finding_all_paths: str | None  # the same for drop, where a skip namesake is in it


@dataclass(frozen=True)
class AblationEvidence:
    images: str  # "top examples" or "random sample"
    count: int
    reduce: str  # "max" or "mean" over positions
    activation: float  # mean over images of the intact target's reduced activation
    drop_all: float | None  # every component zeroed at once
    drop_all_interval: list[float] | None
    components: list[Test]  # one per component, in the claim's order
    groups: list[Test]  # one per claimed sign with two or more components


@dataclass(frozen=True)
class SufficiencyEvidence:
    samples: int  # images x positions of the target's grid
    r2: float | None  # least-squares fit on the components (None: constant target)
    coefficients: list[float]  # of that fit, one per component
    intercept: float
    r2_claimed: float | None  # fit on sum_i c_i * component_i, scale >= 0, and intercept
    claimed_scale: float | None  # that fit's scale, unconstrained


@dataclass(frozen=True)
class CircuitEvidence:
    target: str
    layer: str
    channel: int
    supported: bool  # False: the claim cannot be tested (see reason)
    reason: str
    outcome: str  # supported, partly supported, contradicted, skip only, not supported, ...
    skip: str | None  # the component that is the target's skip namesake, if any
    connections: list[ConnectionEvidence]
    ablation: AblationEvidence | None  # over the target's top examples
    ablation_random: AblationEvidence | None  # over a random sample of the corpus
    sufficiency: SufficiencyEvidence | None
    verdict: str
    seed: int
    random_draws: int

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


def _r2(y: np.ndarray, design: np.ndarray) -> tuple[float | None, np.ndarray]:
    """R^2 of the least-squares fit of y on design (which holds a column of ones)."""
    solution, *_ = np.linalg.lstsq(design, y, rcond=None)
    total = float(((y - y.mean()) ** 2).sum())
    if total <= 1e-12 * max(1.0, float((y**2).sum())):
        return None, solution
    residual = float(((y - design @ solution) ** 2).sum())
    return 1.0 - residual / total, solution


# --- the variants: which channels each forward pass zeroes -------------------------------


@dataclass
class _Plan:
    """Variants in order (each: layer -> channels to zero) and where each test's sit."""

    variants: list[dict[str, list[int]]]
    each: list[int]  # variant of each component alone
    groups: list[tuple[int, list[int], int]]  # (variant, component indices, claimed sign)
    group_draws: list[list[int]]  # random variants of each group
    group_exhaustive: list[bool]  # every possible set was drawn
    single_draws: dict[str, list[int]]  # per layer, random single-channel variants
    exhaustive: dict[str, bool]


def _plan(
    parts: list[Component],
    counts: dict[str, int],
    skips: dict[str, int],
    rng: np.random.Generator,
    draws: int,
) -> _Plan:
    """Intact, all components, each alone, each group, then the random draws."""
    together: dict[str, list[int]] = {}
    for part in parts:
        together.setdefault(part.layer, []).append(part.channel)
    variants: list[dict[str, list[int]]] = [{}, together]
    each = []
    for part in parts:
        each.append(len(variants))
        variants.append({part.layer: [part.channel]})
    groups = []
    for sign in (1, -1):
        members = [i for i, p in enumerate(parts) if np.sign(p.coefficient) == sign]
        if len(members) > 1:
            zeroed: dict[str, list[int]] = {}
            for i in members:
                zeroed.setdefault(parts[i].layer, []).append(parts[i].channel)
            groups.append((len(variants), members, sign))
            variants.append(zeroed)
    pools = {
        n: np.setdiff1d(np.arange(counts[n]), chosen + ([skips[n]] if n in skips else []))
        for n, chosen in together.items()
    }
    group_draws, group_exhaustive = [], []
    for variant, _members, _sign in groups:
        found = []
        sets = _distinct_sets(variants[variant], pools, rng, draws)
        for chosen in sets:
            found.append(len(variants))
            variants.append(chosen)
        group_draws.append(found)
        group_exhaustive.append(len(sets) < draws)
    single_draws, exhaustive = {}, {}
    for n, pool in pools.items():
        exhaustive[n] = len(pool) <= draws
        chosen = pool if exhaustive[n] else rng.choice(pool, size=draws, replace=False)
        single_draws[n] = []
        for c in chosen:
            single_draws[n].append(len(variants))
            variants.append({n: [int(c)]})
    return _Plan(variants, each, groups, group_draws, group_exhaustive, single_draws, exhaustive)


def _distinct_sets(
    like: dict[str, list[int]],
    pools: dict[str, np.ndarray],
    rng: np.random.Generator,
    draws: int,
) -> list[dict[str, list[int]]]:
    """Up to ``draws`` different random channel sets with as many channels per layer as
    ``like``: all of them where there are no more than that (in a fixed order)."""
    sizes = {n: len(c) for n, c in like.items()}
    if any(len(pools[n]) < k for n, k in sizes.items()):
        return []
    possible = math.prod(math.comb(len(pools[n]), k) for n, k in sizes.items())
    if possible <= draws:
        per_layer = [
            [list(map(int, c)) for c in itertools.combinations(pools[n], k)]
            for n, k in sizes.items()
        ]
        return [dict(zip(sizes, combo, strict=True)) for combo in itertools.product(*per_layer)]
    seen: set[tuple[tuple[int, ...], ...]] = set()
    sets = []
    while len(sets) < draws:
        chosen = {
            n: sorted(rng.choice(pools[n], size=k, replace=False).tolist())
            for n, k in sizes.items()
        }
        key = tuple(tuple(c) for c in chosen.values())
        if key not in seen:
            seen.add(key)
            sets.append(chosen)
    return sets


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


# --- running the variants ----------------------------------------------------------------


class _Ablation:
    """Runs the model on image chunks with channel masks, one mask set per variant."""

    def __init__(
        self,
        model: nn.Module,
        modules: dict[str, nn.Module],  # component layer -> its module
        target: nn.Module,
        channel: int,
        masks: dict[str, torch.Tensor],  # layer -> [V, C] of 0/1
        skips: dict[str, int],  # layer -> the target's namesake reaching it by a skip
    ) -> None:
        self.model, self.modules, self.target, self.channel = model, modules, target, channel
        self.masks, self.skips = masks, skips
        self.variants = next(iter(masks.values())).shape[0]

    def _pass(
        self,
        images: torch.Tensor,
        masks: dict[str, torch.Tensor],
        record: dict[str, torch.Tensor],
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Target maps [V, n, H, W] for the V variants in ``masks``, as they are and with
        what each variant took from the skip namesakes added back (the learned path)."""
        n, variants = images.shape[0], next(iter(masks.values())).shape[0]
        out: dict[str, torch.Tensor] = {}
        removed: list[torch.Tensor] = []  # [V, n, h, w]: what zeroing took from a namesake

        def mask_hook(name: str):
            def hook(_m: nn.Module, _i: object, output: torch.Tensor) -> torch.Tensor:
                if output.shape[0] == n:  # the first hooked layer: one copy per variant
                    output = output.unsqueeze(0).expand(variants, *output.shape)
                else:
                    output = output.view(variants, n, *output.shape[1:])
                record[name] = output[0].clone()  # variant 0 is intact in its own layer
                mask = masks[name].to(output)
                if name in self.skips:
                    c = self.skips[name]
                    removed.append(output[:, :, c] * (1 - mask[:, c])[:, None, None, None])
                output = output * mask[:, None, :, None, None]
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
        maps = out["target"]
        learned = maps + sum(removed) if removed else maps
        return maps, learned

    def run(
        self, images: torch.Tensor, batch_size: int
    ) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """Target maps [V, N, H, W] (all paths, learned path) and the component layers'
        intact outputs [N, C, h, w]."""
        maps: list[tuple[torch.Tensor, torch.Tensor]] = []
        records: dict[str, list[torch.Tensor]] = {}
        chunk = max(1, batch_size // self.variants)
        for start in range(0, images.shape[0], chunk):
            part = images[start : start + chunk]
            record: dict[str, torch.Tensor] = {}
            try:
                maps.append(self._pass(part, self.masks, record))
            except RuntimeError as exc:
                if isinstance(exc, torch.OutOfMemoryError):
                    raise
                # Batch sizes disagree somewhere: a skip from below the component layers.
                each = []
                for v in range(self.variants):
                    single = {name: m[v : v + 1] for name, m in self.masks.items()}
                    each.append(self._pass(part, single, record if v == 0 else {}))
                maps.append((torch.cat([a for a, _ in each]), torch.cat([b for _, b in each])))
            for key, value in record.items():
                records.setdefault(key, []).append(value)
        all_paths = torch.cat([a for a, _ in maps], dim=1)
        learned = torch.cat([b for _, b in maps], dim=1)
        return all_paths, learned, {k: torch.cat(v) for k, v in records.items()}


# --- the claim ---------------------------------------------------------------------------


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
    if any(p.coefficient == 0 or not np.isfinite(p.coefficient) for p in parts):
        raise ValueError("every coefficient must be a non-zero number")
    return target_decl, parts


def circuit_evidence(
    model: nn.Module,
    organism: Organism,
    target: tuple[str, int],
    components: Sequence[Component | Sequence[Any]],
    images: torch.Tensor | Sequence[torch.Tensor],
    *,
    random_images: torch.Tensor | Sequence[torch.Tensor] | None = None,
    seed: int = 0,
    random_draws: int = 100,
    reduce: Literal["max", "mean"] = "max",
    target_name: str | None = None,
    batch_size: int = 256,
) -> CircuitEvidence:
    """Weigh the claim ``target = sum_i c_i * component_i`` (see the module docstring).

    Args:
        target: (layer, channel) of the neuron the claim explains.
        components: ``Component`` or (layer, channel[, coefficient[, name]]) tuples, in
            significant layers below the target's.
        images: preprocessed [N, 3, H, W] batch (or a list of [3, H, W]): the target's top
            dataset examples.
        random_images: the same for a random sample of the corpus, reported apart.
        seed: seeds the random channels of the baselines and the bootstrap.
        random_draws: random channel sets per baseline.
        target_name: how the verdict refers to the target; "<alias>:<channel>" by default.
        batch_size: images x variants per forward pass, but at least one image with all
            its variants; bounds memory.

    Returns:
        ``CircuitEvidence``; ``supported`` is False (with a reason) where a component is
        not below the target. The model's train/eval mode is restored afterwards.
    """
    if reduce not in ("max", "mean"):
        raise ValueError(f"reduce must be 'max' or 'mean', not {reduce!r}")
    if not components:
        raise ValueError("a claim needs at least one component")
    if random_draws < 1:
        raise ValueError("random_draws must be at least 1")
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
        return CircuitEvidence(
            name, layer, channel, False, reason, "unsupported", None, [], None, None, None,
            reason, seed, random_draws,
        )  # fmt: skip

    batch = _as_batch(images).to(next(model.parameters()).device)
    sample = None if random_images is None else _as_batch(random_images).to(batch.device)
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
            skips = {
                n: channel
                for n, m in modules.items()
                if counts[n] == counts[layer] and identity_skip(model, m, target_module, batch[:1])
            }
            plan = _plan(parts, counts, skips, np.random.default_rng(seed), random_draws)
            masks = _masks(plan.variants, counts, list(modules))
            ablate = _Ablation(model, modules, target_module, channel, masks, skips)
            maps, learned, records = ablate.run(batch, batch_size)
            random_maps = None if sample is None else ablate.run(sample, batch_size)[:2]
            connections = _connection_evidence(
                model, organism, (layer, channel), parts, skips, records, maps[0], batch.device
            )
    finally:
        model.train(was_training)

    is_skip = [skips.get(p.layer) == p.channel for p in parts]
    rng = np.random.default_rng(seed)
    ablation = _ablation_evidence("top examples", maps, learned, plan, parts, is_skip, reduce, rng)
    ablation_random = None
    if random_maps is not None:
        ablation_random = _ablation_evidence(
            "random sample", *random_maps, plan, parts, is_skip, reduce, rng
        )
    sufficiency = _sufficiency_evidence(maps[0], records, parts)
    outcome = _outcome(ablation)
    skip = next((p.name for p, s in zip(parts, is_skip, strict=True) if s), None)
    verdict = _verdict(name, outcome, connections, ablation, ablation_random, sufficiency)
    return CircuitEvidence(
        name, layer, channel, True, "", outcome, skip, connections, ablation, ablation_random,
        sufficiency, verdict, seed, random_draws,
    )  # fmt: skip


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
    target: tuple[str, int],
    parts: list[Component],
    skips: dict[str, int],
    records: dict[str, torch.Tensor],
    target_maps: torch.Tensor,
    device: torch.device,
) -> list[ConnectionEvidence]:
    layer, channel = target
    connections = []
    for below in dict.fromkeys(p.layer for p in parts):  # one row per component layer
        w = expanded_weights(model, organism, layer, below=below, channels=[channel], device=device)
        ranking = {c.channel: c for c in input_ranking(w, channel)}
        learned, row = ranking, w.row(channel)
        if below in skips and w.centre is not None:
            row = w.learned_row(channel)
            own_only = dataclasses.replace(w, weights=row[None])
            learned = {c.channel: c for c in input_ranking(own_only, channel)}
        sums = peak_contributions(w, row, records[below], target_maps).sum(axis=(1, 2))
        for part in (p for p in parts if p.layer == below):
            link, own = ranking[part.channel], learned[part.channel]
            inputs = len(ranking)
            contribution = float(sums[part.channel])
            connections.append(
                ConnectionEvidence(
                    name=str(part.name),
                    layer=part.layer,
                    channel=part.channel,
                    coefficient=part.coefficient,
                    strength=link.strength,
                    rank=link.rank,
                    inputs=inputs,
                    percentile=100.0 * link.rank / inputs,
                    skip=skips.get(below) == part.channel,
                    learned_strength=own.strength,
                    learned_rank=own.rank,
                    learned_percentile=100.0 * own.rank / inputs,
                    contribution=contribution,
                    sign=1 if contribution >= 0 else -1,
                )
            )
    order = {(p.layer, p.channel): i for i, p in enumerate(parts)}
    return sorted(connections, key=lambda c: order[c.layer, c.channel])


# --- statistics --------------------------------------------------------------------------


def _reduced(maps: torch.Tensor, reduce: str) -> np.ndarray:
    """[V, N] per variant and image, from the target's maps [V, N, H, W]."""
    flat = maps.flatten(2).double().cpu()
    return (flat.amax(dim=2) if reduce == "max" else flat.mean(dim=2)).numpy()


def _drop(intact: float, ablated: float) -> float | None:
    if intact <= 1e-8:  # a ratio to a silent neuron means nothing
        return None
    return 1.0 - ablated / intact


class _Stats:
    """Drops of each variant over one image set, with bootstrap resamples of the images."""

    def __init__(self, reduced: np.ndarray, resamples: np.ndarray) -> None:
        self.reduced = reduced
        self.means = reduced.mean(axis=1)
        self.resamples = resamples  # [BOOTSTRAP, N] image indices
        self.boot_intact = reduced[0][resamples].mean(axis=1)

    def drop(self, v: int) -> float | None:
        return _drop(float(self.means[0]), float(self.means[v]))

    def interval(self, v: int) -> list[float] | None:
        if self.drop(v) is None:
            return None
        boot = self.reduced[v][self.resamples].mean(axis=1)
        ok = self.boot_intact > 1e-8
        drops = 1.0 - boot[ok] / self.boot_intact[ok]
        return [float(np.quantile(drops, 0.025)), float(np.quantile(drops, 0.975))]

    def baseline(self, draws: list[int], exhaustive: bool) -> tuple[Baseline | None, np.ndarray]:
        values = np.array([d for d in map(self.drop, draws) if d is not None])
        if values.size == 0:
            return None, values
        q25, median, q75 = np.quantile(values, [0.25, 0.5, 0.75])
        return Baseline(
            draws=int(values.size),
            exhaustive=exhaustive,
            mean=float(values.mean()),
            std=float(values.std()),
            median=float(median),
            q25=float(q25),
            q75=float(q75),
        ), values


def _p(observed: float, random: np.ndarray) -> float:
    """(k + 1) / (n + 1): k of n random values at least as large as the observed one."""
    return float((np.count_nonzero(random >= observed - 1e-12) + 1) / (random.size + 1))


def _finding(
    sign: int,
    interval: list[float] | None,
    p_value: float | None,
    p_opposite: float | None,
    baseline: Baseline | None,
) -> str:
    if interval is None:
        return SILENT
    if baseline is None or p_value is None or p_opposite is None:
        return UNTESTABLE
    if 1 / (baseline.draws + 1) > ALPHA:
        return UNTESTABLE
    signed = sign * np.array(interval)
    if p_value <= ALPHA and signed.min() > 0:
        return AGREES
    if p_opposite <= ALPHA and signed.max() < 0:
        return CONTRADICTS
    return NOTHING


def _test(
    names: list[str],
    sign: int,
    v: int,
    stats: _Stats,
    learned: _Stats,
    draws: list[int],
    exhaustive: bool,
    skip: bool,
) -> Test:
    drop, learned_drop = stats.drop(v), learned.drop(v)
    baseline, random = stats.baseline(draws, exhaustive)  # never a namesake: no skip in it
    interval, learned_interval = stats.interval(v), learned.interval(v)

    def p(observed: float | None, side: int) -> float | None:
        if baseline is None or observed is None:
            return None
        return _p(side * observed, side * random)

    p_value, p_opposite = p(learned_drop, sign), p(learned_drop, -sign)
    finding = _finding(sign, learned_interval, p_value, p_opposite, baseline)
    p_all = p_all_opposite = finding_all = None
    if skip:
        p_all, p_all_opposite = p(drop, sign), p(drop, -sign)
        finding_all = _finding(sign, interval, p_all, p_all_opposite, baseline)
    return Test(
        names, sign, drop, interval, learned_drop, learned_interval, baseline, p_value,
        p_opposite, p_all, p_all_opposite, finding, finding_all,
    )  # fmt: skip


def _ablation_evidence(
    images: str,
    maps: torch.Tensor,
    learned_maps: torch.Tensor,
    plan: _Plan,
    parts: list[Component],
    is_skip: list[bool],
    reduce: str,
    rng: np.random.Generator,
) -> AblationEvidence:
    """From the target's maps [V, N, H, W] in the order of ``plan.variants``."""
    count = maps.shape[1]
    resamples = rng.integers(0, count, size=(BOOTSTRAP, count))  # the same for both
    stats = _Stats(_reduced(maps, reduce), resamples)
    learned = _Stats(_reduced(learned_maps, reduce), resamples)
    components = [
        _test(
            [str(p.name)],
            1 if p.coefficient > 0 else -1,
            v,
            stats,
            learned,
            plan.single_draws[p.layer],
            plan.exhaustive[p.layer],
            skip,
        )
        for p, v, skip in zip(parts, plan.each, is_skip, strict=True)
    ]
    groups = [
        _test(
            [str(parts[i].name) for i in members],
            sign,
            v,
            stats,
            learned,
            draws,
            exhaustive,
            any(is_skip[i] for i in members),
        )
        for (v, members, sign), draws, exhaustive in zip(
            plan.groups, plan.group_draws, plan.group_exhaustive, strict=True
        )
    ]
    return AblationEvidence(
        images=images,
        count=count,
        reduce=reduce,
        activation=float(stats.means[0]),
        drop_all=stats.drop(1),
        drop_all_interval=stats.interval(1),
        components=components,
        groups=groups,
    )


def _sufficiency_evidence(
    target_maps: torch.Tensor,
    records: dict[str, torch.Tensor],
    parts: list[Component],
) -> SufficiencyEvidence:
    """Pointwise linear fits of the intact target [N, H, W] on the components."""
    target_maps = target_maps.double().cpu()
    grid = tuple(target_maps.shape[1:])
    columns = []
    for part in parts:
        act = records[part.layer][:, part.channel : part.channel + 1].double().cpu()
        if tuple(act.shape[2:]) != grid:
            act = F.interpolate(act, size=grid, mode="bilinear", antialias=True)
        columns.append(act.flatten().numpy())
    y = target_maps.flatten().numpy()
    comps = np.stack(columns, axis=1)
    ones = np.ones((y.shape[0], 1))
    r2, solution = _r2(y, np.hstack([comps, ones]))
    claimed = comps @ np.array([p.coefficient for p in parts], dtype=np.float64)
    r2_free, fitted = _r2(y, np.hstack([claimed[:, None], ones]))
    scale = float(fitted[0]) if r2_free is not None else None
    # A negative scale means the claimed combination runs against the target: the best
    # non-negative scale is then 0, which explains nothing.
    r2_claimed = None if r2_free is None else (r2_free if (scale or 0.0) > 0 else 0.0)
    return SufficiencyEvidence(
        samples=int(y.shape[0]),
        r2=r2,
        coefficients=[float(c) for c in solution[:-1]],
        intercept=float(solution[-1]),
        r2_claimed=r2_claimed,
        claimed_scale=scale,
    )


# --- words -------------------------------------------------------------------------------


def _outcome(ablation: AblationEvidence) -> str:
    """One word for the whole claim, from its tests over the top examples (see the module
    docstring). A test holding a skip namesake counts by its effect over all paths for
    'contradicted' and 'skip only', by its learned path for 'supported'."""
    tests = ablation.components + ablation.groups
    if any(t.finding == SILENT for t in tests):
        return "silent"
    plain = [t for t in tests if t.finding_all_paths is None]
    skipping = [t for t in tests if t.finding_all_paths is not None]
    if any(t.finding == CONTRADICTS for t in plain) or any(
        t.finding_all_paths == CONTRADICTS for t in skipping
    ):
        return "contradicted"
    if all(t.finding == AGREES for t in tests):
        return "supported"
    if any(t.finding == AGREES for t in tests):
        return "partly supported"
    if any(t.finding_all_paths == AGREES for t in skipping):
        return "skip only"
    if any(t.finding == UNTESTABLE for t in tests):
        return "untestable"
    return "not supported"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def _size(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * abs(value):.1f}%"


def _p_text(test: Test) -> str:
    if test.baseline is None:
        return "no random channels to compare"
    if test.finding == UNTESTABLE:
        n = test.baseline.draws
        return f"only {n} random channels to compare: p cannot go below {1 / (n + 1):.3f}"
    kind = {1: "channels", 2: "pairs", 3: "triples"}.get(len(test.names), "sets")
    against = test.finding == CONTRADICTS
    p = test.p_opposite if against else test.p_value
    side = " for the opposite sign" if against else ""
    return f"p = {p:.3f}{side} vs {test.baseline.draws} random {kind}"


def _change(target: str, drop: float | None, interval: list[float] | None = None) -> str:
    """'lowers f12:3 by 12.0% [95% CI 9.1% to 15.2%]' for a relative drop (negative: raises)."""
    drop = drop or 0.0
    verb = "lowers" if drop >= 0 else "raises"
    text = f"{verb} {target} by {_size(drop)}"
    if interval is not None:
        lo, hi = interval if drop >= 0 else (-interval[1], -interval[0])
        text += f" [95% CI {_pct(lo)} to {_pct(hi)}]"
    return text


def _effect(test: Test, target: str) -> str:
    """'lowers f12:3 by 12.0% [...] (p = ...)', over the learned path."""
    return f"{_change(target, test.learned_drop, test.learned_interval)} ({_p_text(test)})"


def _who(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _ending(test: Test, target: str, who: str) -> str:
    if test.finding == AGREES:
        return ", as claimed"
    if test.finding == CONTRADICTS:
        verb = "excite" if test.claimed_sign > 0 else "inhibit"
        return (
            f", against the claim that {who} {verb}{'s' if len(test.names) == 1 else ''} {target}"
        )
    if test.finding == UNTESTABLE:
        return f": too few other channels to test {who} against"
    return f": {who} {'does' if len(test.names) == 1 else 'do'} nothing measurable"


def _p_all(test: Test) -> str:
    """The p-value over all paths, in the direction its finding reads."""
    if test.p_all_paths is None or test.p_all_opposite is None:
        return ""
    if test.finding_all_paths == CONTRADICTS:
        return f" (p = {test.p_all_opposite:.3f} for the opposite sign)"
    return f" (p = {test.p_all_paths:.3f})"


def _skip_ending(test: Test) -> str:
    if test.finding == AGREES:
        return ", as claimed"
    if test.finding == CONTRADICTS:
        return ": its learned path works against the claimed sign"
    if test.finding == UNTESTABLE:
        return ": too few other channels to test its learned path against"
    return ": its learned path adds nothing measurable to the skip"


def _clause(test: Test, target: str, connection: ConnectionEvidence | None) -> str:
    """One component's test in words, over its learned path."""
    who = test.names[0]
    claimed = "excitatory" if test.claimed_sign > 0 else "inhibitory"
    rank = f" (claimed {claimed})"
    if connection is not None:
        learned = connection.skip or connection.learned_rank != connection.rank
        which = "learned-path input" if learned else "input"
        where = _top(connection.learned_percentile)
        rank = f" (claimed {claimed}; #{connection.learned_rank} {which}, {where})"
    if connection is not None and connection.skip:
        return (
            f"{who}{rank} reaches {target} through the identity skip: removing it "
            f"{_change(target, test.drop, test.interval)}{_p_all(test)}; over its learned "
            "path alone removing it "
            f"{_effect(test, target)}{_skip_ending(test)}"
        )
    return f"removing {who}{rank} {_effect(test, target)}{_ending(test, target, who)}"


def _top(percentile: float) -> str:
    return f"top {percentile:.1f}%" if percentile < 10 else f"top {percentile:.0f}%"


def _verdict(
    target: str,
    outcome: str,
    connections: list[ConnectionEvidence],
    ablation: AblationEvidence,
    ablation_random: AblationEvidence | None,
    sufficiency: SufficiencyEvidence,
) -> str:
    """One paragraph a person reads first: the outcome, then each component's test."""
    head = outcome[0].upper() + outcome[1:]
    if outcome == "silent":
        return f"Silent: {target} does not fire on its top examples, so ablation says nothing"
    by_name = {c.name: c for c in connections}
    parts = [_clause(t, target, by_name.get(t.names[0])) for t in ablation.components]
    for group in ablation.groups:
        word = "excitatory" if group.claimed_sign > 0 else "inhibitory"
        who = f"the {word} components {_who(group.names)} together"
        parts.append(f"removing {who} {_effect(group, target)}{_ending(group, target, who)}")
    sentence = f"{head}: " + "; ".join(parts)
    if ablation_random is not None and ablation_random.drop_all is not None:
        sentence += (
            f". On {ablation_random.count} random corpus images, removing every component "
            f"{_change(target, ablation_random.drop_all, ablation_random.drop_all_interval)}"
        )
    if sufficiency.r2 is not None:
        sentence += f". A linear fit on the components explains R² {sufficiency.r2:.2f}"
        if sufficiency.r2_claimed is not None:
            sentence += f", the claimed combination R² {sufficiency.r2_claimed:.2f}"
    return sentence
