"""Time render.featurevis against lucent's render_vis, side by side in one run.

Usage, from the repository root:

    .venv/bin/python -m bench.featurevis --model mobilenet_v2 --layer features_10 \
        --channels 8 --steps 32 --size 64 --batch 1,4,8 --device cpu --threads 1
    .venv/bin/python -m bench.featurevis --gpu-throughput            # on a GPU machine

The first form renders the same channels with the same model, objective, steps and size
both ways, lucent once per channel and ours at each batch size, in interleaved rounds, and
prints seconds per channel (wall: best and median; this process's CPU time: best) and the
ratios. lucent runs twice a round: in a process of its own, as a researcher runs it, and in
this one, after our renders have set the C allocator to keep freed memory
(``render.featurevis.reuse_freed_memory``), which speeds lucent up too. On a small machine
that others share, ``--threads 1`` keeps torch's threads from spinning against each other.
On the CPU, ours optimizes at most
``render.featurevis.cpu_batch_images()`` images together whatever the batch size.

Measured on a 2-core AVX-512 development machine, the full tier's image (128 px upsampled
to 224) at 64 steps, ``--channels 4 --steps 64 --size 128 --batch 4 --threads 1``, seconds
per channel, best wall of 3 rounds: lucent in its own process 5.05, lucent here 4.72, ours
2.36 (2.14x and 2.00x). On another such machine (2026-12-04): 2.75, 2.51 and 1.19 (2.30x
and 2.10x). On a 2-core AMD EPYC (AVX-512, 2026-12-06), 4 rounds, with the in-place ReLU6
that copies nothing (``render.featurevis._InPlaceReLU6``): 3.02, 2.90 and 1.45 (2.09x and
2.00x); without it, the same machine an hour before: 3.09, 3.23 and 1.52. Rounds on these
shared machines vary by 10-15%; torch.profiler, which counts each kernel, is steadier for a
change of ours (the ReLU6 change: copies from 139 to 46 ms of a 1.5 s render). The 64 px
form above, an older run on another machine: lucent 0.99, ours at batch 4 0.39 (2.5x).

``--gpu-throughput`` prints channels per second at 512 steps for every InceptionV1 layer
(random weights: speed does not depend on them) and for one MobileNetV2 layer, and the time
all 5,804 InceptionV1 channels would take.
"""

from __future__ import annotations

import argparse
import copy
import functools
import multiprocessing
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch
from torch import nn

from render import organisms
from render.featurevis import FeatureVisParams, render_channels

__all__ = ["main"]


def _model(slug: str, weights_dir: Path, device: str) -> tuple[organisms.Organism, nn.Module]:
    organism = organisms.get(slug)
    path = organisms.find_weights(organism, weights_dir)
    if path is not None:
        return organism, organisms.load(organism, path, device=device).model
    print(f"{slug}: no weights found, timing its architecture with random weights")
    model = organism.architecture().to(device).eval()
    for param in model.parameters():
        param.requires_grad_(False)
    return organism, model


def _ints(text: str) -> list[int]:
    return [int(n) for n in text.split(",") if n]


def _channels(text: str) -> list[int]:
    # "8" means the first eight channels; "3,7,11" names them.
    if "," in text:
        return [int(c) for c in text.split(",") if c]
    return list(range(int(text)))


Timing = tuple[float, float]  # wall seconds, this process's CPU seconds


def _timed(work: Callable[[], object]) -> Timing:
    wall, cpu = time.perf_counter(), time.process_time()
    work()
    return time.perf_counter() - wall, time.process_time() - cpu


def _ours(
    model: nn.Module,
    organism: organisms.Organism,
    layer: str,
    channels: list[int],
    params: FeatureVisParams,
    batch: int,
    device: str,
) -> Timing:
    return _timed(
        lambda: render_channels(
            model, organism, layer, channels, params, batch_size=batch, device=device
        )
    )


def _lucent(model: nn.Module, layer: str, channels: list[int], steps: int, size: int) -> Timing:
    from lucent.optvis import param
    from lucent.optvis.render import render_vis

    def work() -> None:
        for channel in channels:
            render_vis(
                model,
                f"{layer}:{channel}",
                param_f=lambda: param.image(size),
                thresholds=(steps,),
                preprocess=True,  # lucent picks InceptionV1's range or ImageNet normalization
                progress=False,
                show_image=False,
            )
            # render_vis leaves a hook on every module; they would pile up call after call.
            for module in model.modules():
                module._forward_hooks.clear()

    return _timed(work)


@functools.cache
def _child_model(slug: str, weights_dir: Path, device: str, threads: int) -> nn.Module:
    torch.set_num_threads(threads)
    return _model(slug, weights_dir, device)[1]


def _lucent_as_shipped(
    slug: str, weights_dir: Path, device: str, threads: int, layer: str, channels: list[int],
    steps: int, size: int,
) -> Timing:  # fmt: skip
    """lucent in a process of its own, where nothing of ours has run: the C allocator as the
    system ships it (our renders tune it for the whole process, lucent's included)."""
    return _lucent(_child_model(slug, weights_dir, device, threads), layer, channels, steps, size)


def compare(args: argparse.Namespace) -> None:
    from lucent.optvis.param import spatial

    organism, model = _model(args.model, args.weights_dir, args.device)
    decl = organism.layer(args.layer)
    channels = _channels(args.channels)
    params = FeatureVisParams(steps=args.steps, size=args.size)
    lucent_model = copy.deepcopy(model)  # render_vis leaks hooks: keep them off ours
    lucent_layer = decl.module.replace(".", "_")
    if torch.device(args.device) != torch.device(spatial.device):
        raise SystemExit(f"lucent renders on {spatial.device}; run with --device {spatial.device}")

    # Warm up all three (thread pools, kernel choices) before timing.
    warm = FeatureVisParams(steps=2, size=args.size)
    _ours(model, organism, decl.name, channels[:1], warm, 1, args.device)
    _lucent(lucent_model, lucent_layer, channels[:1], 2, args.size)
    shipped = functools.partial(
        _lucent_as_shipped, args.model, args.weights_dir, args.device, torch.get_num_threads(),
        lucent_layer,
    )  # fmt: skip
    runs: dict[str, list[Timing]] = {
        "shipped": [], "lucent": [], **{f"ours_{b}": [] for b in args.batch}
    }  # fmt: skip
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as child:
        child.submit(shipped, channels[:1], 2, args.size).result()
        # Interleaved rounds, best of each: other work on a shared machine hits all alike.
        torch.manual_seed(0)
        np.random.seed(0)
        for _ in range(args.rounds):
            runs["shipped"].append(child.submit(shipped, channels, args.steps, args.size).result())
            runs["lucent"].append(
                _lucent(lucent_model, lucent_layer, channels, args.steps, args.size)
            )
            for b in args.batch:
                runs[f"ours_{b}"].append(
                    _ours(model, organism, decl.name, channels, params, b, args.device)
                )
    n = len(channels)
    best = {k: (min(t[0] for t in v) / n, min(t[1] for t in v) / n) for k, v in runs.items()}
    median = {k: statistics.median(t[0] for t in v) / n for k, v in runs.items()}

    print(
        f"{args.model} {decl.name}, {n} channels, {args.steps} steps, {args.size} px, "
        f"{args.device}, {torch.get_num_threads()} threads, {args.rounds} rounds"
    )
    labels = {
        "shipped": "lucent, a process of its own",
        "lucent": "lucent, our allocator setting",
        **{f"ours_{b}": f"ours, batch {b}" for b in args.batch},
    }
    print(
        f"{'seconds per channel':31s} wall best  wall median  cpu best   "
        "speedup (wall) over lucent: own process, same allocator"
    )
    for key, label in labels.items():
        line = f"{label:31s} {best[key][0]:9.3f}  {median[key]:11.3f}  {best[key][1]:8.3f}"
        if key.startswith("ours"):
            line += f"   {best['shipped'][0] / best[key][0]:5.2f}x, "
            line += f"{best['lucent'][0] / best[key][0]:5.2f}x"
        print(line)


def gpu_throughput(args: argparse.Namespace) -> None:
    steps = args.steps
    params = FeatureVisParams(steps=steps, size=args.size)
    warm = FeatureVisParams(steps=2, size=args.size)
    print(f"{args.device}, {steps} steps, {args.size} px, batch {args.batch}")

    def rate(model: nn.Module, organism: organisms.Organism, layer: str, count: int) -> float:
        channels = list(range(min(args.batch, count)))
        _ours(model, organism, layer, channels, warm, args.batch, args.device)
        seconds, _ = _ours(model, organism, layer, channels, params, args.batch, args.device)
        return len(channels) / seconds

    organism, model = _model("inceptionv1", args.weights_dir, args.device)
    total_channels = 0
    total_seconds = 0.0
    for spec in organisms.describe(organism):
        per_second = rate(model, organism, spec.name, spec.channels)
        total_channels += spec.channels
        total_seconds += spec.channels / per_second
        print(f"inceptionv1 {spec.name:8s} {spec.channels:5d} channels {per_second:8.2f} ch/s")
    print(
        f"inceptionv1, all {total_channels} channels: {total_seconds / 3600:.2f} h "
        f"({total_seconds:.0f} s) on this device"
    )

    organism, model = _model("mobilenet_v2", args.weights_dir, args.device)
    layer = organism.layer(args.layer).name
    spec = next(s for s in organisms.describe(organism) if s.name == layer)
    print(f"mobilenet_v2 {layer} {rate(model, organism, layer, spec.channels):8.2f} ch/s")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="mobilenet_v2", help="ignored by --gpu-throughput")
    parser.add_argument("--layer", default="features_10", help="the MobileNetV2 one there")
    parser.add_argument("--channels", default="8", help="a count (first N) or a list: 3,7,11")
    parser.add_argument("--steps", type=int, default=None, help="32; 512 with --gpu-throughput")
    parser.add_argument("--size", type=int, default=None, help="64; 128 with --gpu-throughput")
    parser.add_argument(
        "--batch", type=_ints, default=None, help="sizes to time: 1,4,8; 64 with --gpu-throughput"
    )
    parser.add_argument("--device", default=None, help="cpu; cuda with --gpu-throughput")
    parser.add_argument("--weights-dir", type=Path, default=Path("var/weights"))
    parser.add_argument(
        "--threads", type=int, default=None, help="torch CPU threads (1 on a busy machine)"
    )
    parser.add_argument("--rounds", type=int, default=3, help="interleaved repeats")
    parser.add_argument("--gpu-throughput", action="store_true")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    gpu = args.gpu_throughput
    args.steps = args.steps or (512 if gpu else 32)
    args.batch = args.batch or ([64] if gpu else [1, 4, 8])
    if gpu:
        args.batch = max(args.batch)
    args.device = args.device or ("cuda" if gpu else "cpu")
    args.size = args.size or (128 if gpu else 64)
    (gpu_throughput if gpu else compare)(args)


if __name__ == "__main__":
    main()
