"""The preview atlas of a model: how long it takes on this machine, and whether each
preview image activates its channel more than the best photo of the corpus does.

Usage, from the repository root:

    .venv/bin/python -m bench.atlas                        # 4 channels a layer, sampled
    .venv/bin/python -m bench.atlas --per-layer 0          # every channel (slow)
    .venv/bin/python -m bench.atlas --steps 48 --lr 0.08   # another preview recipe

For each significant layer it renders ``--per-layer`` channels (evenly spaced) with the
preview tier's recipe for the layer (``jobs.params.tier_params``: ``PREVIEW``, or
``PREVIEW_FINE`` on a fine layer; the options override either) as a worker does (one
thread: ``render.featurevis.CPU_THREADS``), times them, and compares each image's channel
objective (the channel's mean activation over the layer's positions, the image fed as
rendered) with the best photo's: the highest mean activation of that channel over every
photo of ``--corpus`` at the model's input size. It prints, per layer and over all, the
fraction of previews that beat the best photo, seconds per channel, and the atlas time:
sum over layers of (seconds per channel x channels), divided by ``--workers`` (processes
on as many cores, as ``bin/run`` runs them).

``--live`` measures the real atlas instead: beside a running ``bin/run`` (same database),
it follows the model's coverage until every channel has dataset examples and a preview,
and prints the minutes since the atlas's first job was queued.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import django
import numpy as np
import torch

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "microscope.settings")
django.setup()

from jobs.params import tier_params  # noqa: E402
from neurons.models import Layer, Model  # noqa: E402
from render import organisms  # noqa: E402
from render.examples import list_images, load_image  # noqa: E402
from render.featurevis import FeatureVisParams, render_channels  # noqa: E402
from render.hooks import capture  # noqa: E402

__all__ = ["main"]


def _channel_means(
    loaded: organisms.Loaded, images: torch.Tensor, layers: list[str]
) -> dict[str, torch.Tensor]:
    """Each layer's channel means over positions: [images, channels]."""
    organism = loaded.organism
    with torch.no_grad(), capture(organism.modules(loaded.model, layers)) as outputs:
        loaded.model(organism.preprocess(images))
        return {name: outputs[name].float().mean(dim=(2, 3)) for name in layers}


def best_photos(loaded: organisms.Loaded, corpus: Path, batch: int = 32) -> dict[str, np.ndarray]:
    """Per layer, each channel's highest mean activation over the corpus's photos."""
    names = list_images(corpus)
    layers = [decl.name for decl in loaded.organism.layers]
    best: dict[str, torch.Tensor] = {}
    for start in range(0, len(names), batch):
        images = torch.stack(
            [
                load_image(corpus / n, loaded.organism.input_size)
                for n in names[start : start + batch]
            ]
        )
        for name, means in _channel_means(loaded, images, layers).items():
            top = means.max(dim=0).values
            best[name] = top if name not in best else torch.maximum(best[name], top)
    return {name: values.numpy() for name, values in best.items()}


def live(slug: str, poll: float = 10.0) -> None:
    """Follow a running atlas's coverage until it is complete."""
    from django.utils import timezone

    from jobs.atlas import coverage
    from jobs.models import RenderJob
    from neurons.models import Model

    model = Model.objects.get(slug=slug)
    first = None
    while True:
        first = first or RenderJob.objects.filter(model=model).order_by("created").first()
        rows = coverage(model=model)
        channels = sum(row.channels for row in rows)
        examples, preview = sum(r.examples for r in rows), sum(r.preview for r in rows)
        since = (timezone.now() - first.created).total_seconds() / 60 if first else 0.0
        print(f"{since:6.1f} min: examples {examples}/{channels}, preview {preview}/{channels}")
        if first and examples == preview == channels:
            print(f"preview atlas of {slug} complete {since:.1f} min after its first job")
            return
        time.sleep(poll)


def _recipe_text(recipe: FeatureVisParams) -> str:
    return (
        f"{recipe.steps} steps, {recipe.size} px, lr {recipe.lr}"
        + ("" if recipe.upsample else ", not upsampled")
        + (f", {recipe.pre_relu_steps} pre-ReLU" if recipe.pre_relu_steps else "")
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="mobilenet_v2")
    parser.add_argument("--corpus", type=Path, default=Path("demo/photos"))
    parser.add_argument("--per-layer", type=int, default=4, help="0: every channel")
    parser.add_argument("--workers", type=int, default=2, help="processes sharing the atlas")
    parser.add_argument("--steps", type=int, help="default: the tier's, per layer")
    parser.add_argument("--size", type=int)
    parser.add_argument("--lr", type=float)
    parser.add_argument("--pre-relu-steps", type=int)
    parser.add_argument("--live", action="store_true", help="follow a running bin/run's atlas")
    parser.add_argument("--layers", default="", help="comma-separated; all by default")
    parser.add_argument("--weights-dir", type=Path, default=Path("var/weights"))
    args = parser.parse_args(argv)
    if args.live:
        live(args.model)
        return

    organism = organisms.get(args.model)
    path = organisms.find_weights(organism, args.weights_dir)
    if path is None:
        raise SystemExit(f"{args.model}: weights not found; see README (add_model)")
    loaded = organisms.load(organism, path)
    overrides = {
        name: value
        for name, value in {
            "steps": args.steps,
            "size": args.size,
            "lr": args.lr,
            "pre_relu_steps": args.pre_relu_steps,
        }.items()
        if value is not None
    }
    started = time.perf_counter()
    best = best_photos(loaded, args.corpus)
    print(
        f"{args.model}: best photo of {len(list_images(args.corpus))} in {args.corpus} per "
        f"channel ({time.perf_counter() - started:.1f} s); overrides of the preview tier: "
        f"{overrides or 'none'}"
    )
    warm = FeatureVisParams(steps=2, size=32, upsample=False)
    render_channels(loaded.model, organism, organism.layers[0].name, [0], warm)
    beat = total = active = active_beat = 0
    atlas_seconds = 0.0
    print(
        f"{'layer':<14}{'channels':>9}{'sampled':>8}{'s/channel':>10}{'beat best photo':>17}"
        "  recipe"
    )
    chosen = {organism.layer(name).name for name in args.layers.split(",") if name}
    model = Model(slug=organism.slug, input_size=organism.input_size)
    for decl, spec in zip(organism.layers, organisms.describe(organism), strict=True):
        if chosen and decl.name not in chosen:
            continue
        layer = Layer(model=model, name=spec.name, height=spec.height, width=spec.width)
        wanted = {**tier_params("preview", layer), **overrides}
        recipe = FeatureVisParams(objective="channel", **wanted)
        recipe.validate()  # the overrides may not fit the tier's other fields
        channels_in_layer = len(best[decl.name])
        count = channels_in_layer if args.per_layer <= 0 else min(args.per_layer, channels_in_layer)
        channels = sorted({int(c) for c in np.linspace(0, channels_in_layer - 1, count)})
        began = time.perf_counter()
        images = render_channels(loaded.model, organism, decl.name, channels, recipe)
        per_channel = (time.perf_counter() - began) / len(channels)
        rendered = torch.stack(
            [torch.from_numpy(images[c][0]).permute(2, 0, 1).float() / 255 for c in channels]
        )
        means = _channel_means(loaded, rendered, [decl.name])[decl.name].numpy()
        won = {c: bool(means[i, c] > best[decl.name][c]) for i, c in enumerate(channels)}
        # Units that no photo activates at all (some of MobileNetV2's features_0 filters are
        # about 0): only a preview that activates them beats the photos.
        silent = [c for c in channels if best[decl.name][c] <= 0]
        wins = sum(won.values())
        lost = [
            f"{c} ({means[i, c]:.3g} vs {best[decl.name][c]:.3g})"
            for i, c in enumerate(channels)
            if not won[c]
        ]
        beat, total = beat + wins, total + len(channels)
        active_beat += wins - sum(won[c] for c in silent)
        active += len(channels) - len(silent)
        atlas_seconds += per_channel * channels_in_layer
        print(
            f"{decl.name:<14}{channels_in_layer:>9}{len(channels):>8}{per_channel:>10.2f}"
            f"{wins:>11}/{len(channels)}  {_recipe_text(recipe)}"
            + (f" ({len(silent)} silent on every photo)" if silent else "")
        )
        if lost:
            print(f"  not beaten (preview vs best photo): {', '.join(lost)}")
    print(
        f"previews that beat the best photo: {beat}/{total} ({100 * beat / total:.0f}%), "
        f"{active_beat}/{active} of the units some photo activates; "
        f"preview atlas of all {sum(len(v) for v in best.values())} channels: "
        f"{atlas_seconds / 60:.1f} min on 1 thread, {atlas_seconds / 60 / args.workers:.1f} min "
        f"over {args.workers} workers (target 20 min; this machine's load counts)"
    )


if __name__ == "__main__":
    main()
