"""How much the one-pass dataset-example sweep costs next to a plain forward pass.

Runs MobileNetV2 (real weights) over N photos twice per round, through the same loader at
the same batch size: once with every significant layer hooked and swept (top/bottom-k,
positions, histograms), once as a plain forward pass. Prints images per second of each
and their ratio (target: sweep / forward >= 0.8).

    .venv/bin/python bench/examples.py --images 128 --batch-size 32
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script from anywhere

from render import organisms  # noqa: E402
from render.examples import image_loader, list_images, sweep  # noqa: E402


def forward_pass(
    model: torch.nn.Module, organism: organisms.Organism, folder: Path, batch_size: int
) -> None:
    loader = image_loader(folder, list_images(folder), organism.input_size, batch_size=batch_size)
    with torch.inference_mode():
        for _read, batch, _failed in loader:
            if batch is not None:
                model(organism.preprocess(batch))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--photos", type=Path, default=ROOT / ".." / "shared" / "datasets" / "photos"
    )
    parser.add_argument("--images", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    organism = organisms.get("mobilenet_v2")
    weights = organisms.find_weights(organism, Path("/nonexistent"))
    if weights is None:
        sys.exit("MobileNetV2 weights not found")
    model = organisms.load(organism, weights).model
    torch.manual_seed(0)

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for name in list_images(args.photos)[: args.images]:
            (folder / name).symlink_to((args.photos / name).resolve())
        count = len(list_images(folder))
        print(
            f"mobilenet_v2, {count} images, batch {args.batch_size}, "
            f"{len(organism.layers)} layers, {torch.get_num_threads()} threads"
        )

        forward_pass(model, organism, folder, args.batch_size)  # warm-up
        times: dict[str, list[float]] = {"sweep": [], "forward": []}
        for _ in range(args.rounds):  # interleaved, so background load hits both alike
            start = time.perf_counter()
            sweep(model, organism, folder, batch_size=args.batch_size)
            times["sweep"].append(time.perf_counter() - start)
            start = time.perf_counter()
            forward_pass(model, organism, folder, args.batch_size)
            times["forward"].append(time.perf_counter() - start)

    rates = {name: count / min(seconds) for name, seconds in times.items()}
    for name, seconds in times.items():
        runs = ", ".join(f"{s:.2f}" for s in seconds)
        print(f"{name:>8}: {rates[name]:7.1f} images/s (best of {args.rounds}; runs {runs} s)")
    print(f"   ratio: {rates['sweep'] / rates['forward']:.2f} (sweep / forward, target >= 0.8)")


if __name__ == "__main__":
    main()
