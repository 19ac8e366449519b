"""Worker time of one exploration: a 224 px image through every significant layer of a
model, the top channels of each with their heat maps, as ``jobs.executors.explore`` stores
them (target: under 2 s for MobileNetV2's 19 layers on a 2-core CPU).

Usage, from the repository root:

    .venv/bin/python -m bench.explore [--model mobilenet_v2] [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "microscope.settings")
django.setup()

from jobs.executors.explore import result_of  # noqa: E402
from jobs.explore import TOP  # noqa: E402
from render import organisms  # noqa: E402
from render.examples import load_image  # noqa: E402
from render.explore import explore  # noqa: E402
from render.featurevis import CPU_THREADS  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="mobilenet_v2")
    parser.add_argument("--image", type=Path, default=Path("demo/photos/0001.jpg"))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--weights-dir", type=Path, default=Path("var/weights"))
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(CPU_THREADS)  # as a CPU worker process runs
    organism = organisms.get(args.model)
    path = organisms.find_weights(organism, args.weights_dir)
    if path is None:
        raise SystemExit(f"{args.model}: weights not found")
    loaded = organisms.load(organism, path)
    times = []
    for _ in range(args.rounds + 1):  # the first warms up
        started = time.perf_counter()
        image = load_image(args.image, organism.input_size)
        layers = explore(loaded.model, organism, image, top=TOP)
        result = result_of(layers, organism.input_size)
        times.append(time.perf_counter() - started)
    best, median = min(times[1:]), statistics.median(times[1:])
    size = sum(len(c["heatmap"]) for layer in result["layers"] for c in layer["channels"])
    print(
        f"{args.model}: {len(layers)} layers x {TOP} channels, {organism.input_size} px, "
        f"{CPU_THREADS} thread: best {best:.3f} s, median {median:.3f} s "
        f"(target 2 s: {2 / median:.1f}x under); heat maps {size / 1024:.0f} KB"
    )


if __name__ == "__main__":
    main()
