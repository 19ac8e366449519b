"""The evidence method on MobileNetV2's real weights: four claims about one neuron, and how
often a connection's sign agrees with what removing the input really does.

Target layer features_12 (an inverted residual: features_11 reaches it through an identity
skip too). Top examples: each target's 16 most active photos of the demo corpus (spatial
max); random sample: 16 others. Prints:

1. For the most active targets, whether a claim built from the two strongest inputs over
   the learned path (signs from their contribution) is supported. The first that is (else
   the most active) gets four claims, whose verdicts are printed verbatim: those two
   inputs; the same negated; the same plus the weakest input (a component that does
   nothing); the target's skip namesake alone.
2. Over the 20 most active targets x their 5 strongest learned-path inputs, the fraction
   whose sign agrees with the sign of the measured effect of zeroing the input: the sign
   of the kernel's sum (what was shown before), and the sign of the contribution at the
   peak (what is shown now).

    .venv/bin/python bench/evidence.py [--targets 12]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from render import organisms  # noqa: E402
from render.evidence import circuit_evidence  # noqa: E402
from render.examples import list_images, load_image  # noqa: E402
from render.hooks import capture  # noqa: E402
from render.weights import expanded_weights, input_ranking, peak_contributions  # noqa: E402

LAYER, BELOW = "features_12", "features_11"
TOP = 16


def _expression(components: list[tuple[str, int, int]]) -> str:
    text = " ".join(f"{'+' if s > 0 else '-'} {layer}:{c}" for layer, c, s in components)
    return text.removeprefix("+ ")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, default=12, help="targets tried for claim 1")
    args = parser.parse_args()
    torch.manual_seed(0)
    organism = organisms.get("mobilenet_v2")
    model = organisms.load(organism, organisms.find_weights(organism, Path("/nonexistent"))).model
    root = REPO / "demo" / "photos"
    names = list_images(root)
    images = organism.preprocess(torch.stack([load_image(root / n, 224) for n in names]))
    modules = organism.modules(model, [LAYER, BELOW])
    with torch.no_grad(), capture(modules) as out:
        model(images)
    above, below = out[LAYER], out[BELOW]
    w = expanded_weights(model, organism, LAYER, below=BELOW)
    active = above.amax(dim=(2, 3)).mean(dim=0).argsort(descending=True).tolist()
    rng = np.random.default_rng(0)

    def sets(target: int) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
        order = above[:, target].amax(dim=(1, 2)).argsort(descending=True)
        top = order[:TOP]
        rest = order[TOP:].numpy()
        sample = torch.from_numpy(rng.choice(rest, size=min(TOP, rest.size), replace=False))
        return images[top], images[sample], top.tolist()

    def learned_inputs(target: int, top: list[int]) -> list[tuple[int, int]]:
        """(channel, sign) of every learned-path input, strongest first, namesake apart."""
        row = w.learned_row(target)
        maps = peak_contributions(w, row, below[top], above[top, target])
        own = dataclasses.replace(w, weights=row[None], channels=(target,))
        ranking = input_ranking(own, target, maps)
        return [(c.channel, c.sign) for c in ranking if c.channel != target]

    print(f"1. Claims on mobilenet_v2 {LAYER} from {BELOW} ({len(names)} demo photos)")
    chosen = None
    for target in active[: args.targets]:
        top_images, _, top = sets(target)
        inputs = learned_inputs(target, top)
        claim = [("f11", c, s) for c, s in inputs[:2]]
        result = circuit_evidence(
            model, organism, ("f12", target), claim, top_images, random_draws=30
        )
        print(f"   f12:{target} = {_expression(claim)}: {result.outcome}")
        if result.outcome == "supported":
            chosen = target
            break
    if chosen is None:
        chosen = active[0]
        print(f"   none supported; the four claims below are on f12:{chosen}")
    top_images, sample, top = sets(chosen)
    inputs = learned_inputs(chosen, top)
    (a, sa), (b, sb), (weakest, _) = inputs[0], inputs[1], inputs[-1]
    claims = {
        "the two strongest learned-path inputs": [("f11", a, sa), ("f11", b, sb)],
        "the same, negated": [("f11", a, -sa), ("f11", b, -sb)],
        "with a component that does nothing": [
            ("f11", a, sa),
            ("f11", b, sb),
            ("f11", weakest, 1),
        ],
        "through the skip": [("f11", chosen, 1)],
    }
    for title, components in claims.items():
        start = time.perf_counter()
        result = circuit_evidence(
            model, organism, ("f12", chosen), components, top_images, random_images=sample
        )
        seconds = time.perf_counter() - start
        print(f"\n   [{title}] f12:{chosen} = {_expression(components)}  ({seconds:.1f} s)")
        print(f"   outcome: {result.outcome}\n   verdict: {result.verdict}")

    print("\n2. Signs against the measured effect of zeroing each input (top examples)")
    agree = {"kernel sum": 0, "contribution at the peak": 0}
    total = 0
    for target in active[:20]:
        _, _, top = sets(target)
        row = w.learned_row(target)
        maps = peak_contributions(w, row, below[top], above[top, target])
        intact = above[top, target].amax(dim=(1, 2)).mean().item()
        for channel, _ in learned_inputs(target, top)[:5]:

            def zero(_m: object, _i: object, output: torch.Tensor, c: int = channel) -> object:
                output = output.clone()
                output[:, c] = 0
                return output

            handle = modules[BELOW].register_forward_hook(zero)
            with torch.no_grad(), capture({LAYER: modules[LAYER]}) as ablated:
                model(images[top])
            handle.remove()
            effect = np.sign(intact - ablated[LAYER][:, target].amax(dim=(1, 2)).mean().item())
            agree["kernel sum"] += int(np.sign(row[channel].sum()) == effect)
            agree["contribution at the peak"] += int(np.sign(maps[channel].sum()) == effect)
            total += 1
    for name, count in agree.items():
        print(f"   sign of the {name}: {count}/{total} agree ({100 * count / total:.0f}%)")


if __name__ == "__main__":
    main()
