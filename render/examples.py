"""Dataset examples: one streaming pass over a folder of images, every layer hooked at once.

For every channel of every hooked layer, :func:`sweep` keeps:

- the **top-k** images: those whose *maximum* activation over spatial positions is the
  highest, each with that maximum and where it is (row, col in the layer's grid);
- the **bottom-k** images: those whose *minimum* activation over spatial positions is the
  lowest (most negative), each with that minimum and where it is. This is OpenAI
  Microscope's convention. After a ReLU most minima are 0, so bottom examples only say
  something for layers whose outputs can be negative;
- a **histogram** of the activations at all spatial positions of all images;
- each layer's **receptive field** (:func:`receptive_fields`), so that an example is shown
  as the crop of the image its unit actually sees.

Ties are broken by image order (the earlier image wins) and, within an image, by the
first position in row-major order, so the result does not depend on the batch size and
equals a brute-force ranking of the same activations. (A network itself may give
last-bit differences between batch sizes; those are not ours.)

Histograms are exact and one-pass. Each channel's bins are ``bins`` consecutive cells of
the lattice ``[j * w, (j + 1) * w)`` with ``w`` a power of two. Whenever a batch widens the
range seen so far, ``w`` doubles as often as needed and old cells merge pairwise into the
new ones, which loses nothing because the lattices nest. Scaling by a power of two is exact
in floating point, so no value lands in the wrong bin, nothing is clamped into an edge bin,
and the final bins depend only on the channel's overall minimum and maximum: the smallest
power-of-two width that fits them in ``bins`` cells (never below ``2**MIN_BIN_EXPONENT``,
which is what a constant channel gets). Memory does not grow with the number of images.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset

from render.hooks import capture
from render.organisms import Organism

__all__ = [
    "IMAGE_SUFFIXES",
    "MIN_BIN_EXPONENT",
    "Field",
    "LayerExamples",
    "SweepResult",
    "crop_box",
    "image_loader",
    "list_images",
    "load_image",
    "receptive_fields",
    "sweep",
]

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png"})
# Narrowest histogram bin, 2**-12 (about 0.00024): what a channel that never varies gets.
MIN_BIN_EXPONENT = -12


@dataclass(frozen=True)
class LayerExamples:
    """Examples of every channel of one layer; ``k`` is ``min(k, number of images)``.

    Image indices point into :attr:`SweepResult.images`; positions are (row, col) in
    ``grid``.
    """

    name: str
    grid: tuple[int, int]  # (height, width) of the layer's activation map
    top_index: np.ndarray  # [C, k] int64, highest maximum first
    top_value: np.ndarray  # [C, k] float32
    top_pos: np.ndarray  # [C, k, 2] int64
    bottom_index: np.ndarray  # [C, k] int64, lowest minimum first
    bottom_value: np.ndarray  # [C, k] float32
    bottom_pos: np.ndarray  # [C, k, 2] int64
    hist_counts: np.ndarray  # [C, bins] int64
    hist_edges: np.ndarray  # [C, bins + 1] float64, per channel: bin i is [edge i, edge i+1)

    @property
    def channels(self) -> int:
        return self.top_index.shape[0]


@dataclass(frozen=True)
class SweepResult:
    images: list[str]  # paths relative to the swept folder, in index order
    layers: dict[str, LayerExamples]
    skipped: list[str]  # files that could not be read as images
    input_size: int
    fields: dict[str, Field] = dataclasses.field(default_factory=dict)  # by layer

    def channel(self, layer: str, index: int) -> dict[str, Any]:
        """A JSON-serializable summary of one channel, for one artifact per neuron."""
        examples = self.layers[layer]
        if not 0 <= index < examples.channels:
            raise IndexError(f"{layer} has {examples.channels} channels, not {index}")

        unit_field = self.fields.get(layer)

        def listed(indices: np.ndarray, values: np.ndarray, positions: np.ndarray) -> list:
            entries = []
            for i, v, p in zip(indices, values, positions, strict=True):
                pos = (int(p[0]), int(p[1]))
                entry = {
                    "image": self.images[i],
                    "value": float(v),
                    "pos": list(pos),
                    # The square to show, and the unit's receptive field inside it (pixels
                    # of the input image; the field may reach past its edges).
                    "box": list(crop_box(pos, examples.grid, self.input_size, field=unit_field)),
                }
                if unit_field is not None:
                    entry["field"] = [round(x, 2) for x in unit_field.box(*pos)]
                entries.append(entry)
            return entries

        return {
            "layer": layer,
            "channel": index,
            "images": len(self.images),
            "grid": list(examples.grid),
            "input_size": self.input_size,
            "top": listed(
                examples.top_index[index], examples.top_value[index], examples.top_pos[index]
            ),
            "bottom": listed(
                examples.bottom_index[index],
                examples.bottom_value[index],
                examples.bottom_pos[index],
            ),
            "histogram": {
                "edges": [float(e) for e in examples.hist_edges[index]],
                "counts": [int(c) for c in examples.hist_counts[index]],
            },
        }


@dataclass(frozen=True)
class Field:
    """A layer's receptive field in input pixels: the unit at grid position (row, col) sees
    rows ``top + row * stride_y`` to that plus ``height`` (exclusive), and likewise for
    columns. Measured, not derived by hand (see :func:`receptive_fields`)."""

    top: float
    left: float
    height: int
    width: int
    stride_y: float
    stride_x: float

    def box(self, row: int, col: int) -> tuple[float, float, float, float]:
        """(left, top, right, bottom) of the unit's field; may reach outside the image."""
        top = self.top + row * self.stride_y
        left = self.left + col * self.stride_x
        return left, top, left + self.width, top + self.height


def receptive_fields(
    model: nn.Module, organism: Organism, layers: Sequence[str] | None = None
) -> dict[str, Field]:
    """Each layer's receptive field, from the architecture itself: the support of the
    gradient of its centre unit with respect to the input image, through a linearized copy
    of the model (ReLUs as identities, max pools as average pools; ``render.weights``), so
    that every path counts, not just those active on some image. Gradients below a
    millionth of the largest are taken as zero (cuDNN leaves tiny values on a GPU)."""
    from render.weights import FIELD_TOLERANCE, linearized_copy, support_box

    device = _model_device(model)
    lin = linearized_copy(model, device)
    modules = organism.modules(lin, layers)
    size = organism.input_size
    # The gradient is taken at the network's input, after the preprocessing: that is
    # pointwise, so the field in pixels is the same, and it need not be differentiable.
    with torch.no_grad():
        start = organism.preprocess(torch.full((1, 3, size, size), 0.5, device=device))
    image = start.clone().requires_grad_(True)
    probe = torch.Generator().manual_seed(0)
    fields = {}
    with torch.enable_grad(), capture(modules) as outputs:
        lin(image)
        for name, output in outputs.items():
            if output.ndim != 4:  # no grid: the unit sees the whole image
                continue
            height, width = output.shape[2:]
            row, col = height // 2, width // 2
            mix = torch.randn(output.shape[1], generator=probe).to(output)
            (grad,) = torch.autograd.grad(
                (output[0, :, row, col] * mix).sum(), image, retain_graph=True
            )
            support = grad[0].abs().sum(dim=0)
            box = support_box(support > FIELD_TOLERANCE * support.max())
            if box is None:  # the unit does not depend on the image: no field
                continue
            rows, cols = box
            stride_y, stride_x = size / height, size / width
            fields[name] = Field(
                top=rows.start - row * stride_y,
                left=cols.start - col * stride_x,
                height=rows.stop - rows.start,
                width=cols.stop - cols.start,
                stride_y=stride_y,
                stride_x=stride_x,
            )
    return fields


def crop_box(
    pos: tuple[int, int],
    grid: tuple[int, int],
    input_size: int,
    side: int | None = None,
    *,
    field: Field | None = None,
) -> tuple[int, int, int, int]:
    """The (left, top, right, bottom) square of the input image to show around a position.

    With the layer's ``field``, the square holds the unit's receptive field (its longer
    side, at least a seventh and at most the whole image), centred on it; otherwise
    ``side`` (default: two cells but at least a quarter of the image) around the grid
    cell's centre. The square is shifted, not cut, to stay inside the image.
    """
    row, col = pos
    height, width = grid
    if field is not None:
        left, top, right, bottom = field.box(row, col)
        # At least a seventh of the image (32 px of 224): a 3 px field needs context to read.
        side = max(field.height, field.width, round(input_size / 7))
        centre_y, centre_x = (top + bottom) / 2, (left + right) / 2
    else:
        cell = max(input_size / height, input_size / width)
        if side is None:
            side = round(max(2 * cell, input_size / 4))
        centre_y = (row + 0.5) * input_size / height
        centre_x = (col + 0.5) * input_size / width
    side = min(side, input_size)
    top = min(max(round(centre_y - side / 2), 0), input_size - side)
    left = min(max(round(centre_x - side / 2), 0), input_size - side)
    return left, top, left + side, top + side


def list_images(image_dir: Path) -> list[str]:
    """Image files under a folder (any depth), as sorted relative POSIX paths."""
    return sorted(
        p.relative_to(image_dir).as_posix()
        for p in image_dir.rglob("*")
        if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
    )


def load_image(path: Path, input_size: int) -> torch.Tensor:
    """Read an image as RGB, resize its short side to ``input_size * 256 / 224`` and
    centre-crop it to ``input_size``: a [3, input_size, input_size] float tensor in [0, 1].
    """
    short = round(input_size * 256 / 224)
    with Image.open(path) as opened:
        image = opened.convert("RGB")
    width, height = image.size
    scale = short / min(width, height)
    size = (max(round(width * scale), input_size), max(round(height * scale), input_size))
    if size != image.size:  # most photos are stored at the right size already
        image = image.resize(size, Image.Resampling.BILINEAR)
    left = (size[0] - input_size) // 2
    top = (size[1] - input_size) // 2
    image = image.crop((left, top, left + input_size, top + input_size))
    array = np.asarray(image, dtype=np.uint8)
    return torch.from_numpy(array.copy()).permute(2, 0, 1).float().div_(255)


class _ImageFiles(Dataset):
    def __init__(self, root: Path, names: Sequence[str], input_size: int) -> None:
        self.root = root
        self.names = list(names)
        self.input_size = input_size

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, index: int) -> tuple[int, torch.Tensor | None]:
        try:
            return index, load_image(self.root / self.names[index], self.input_size)
        except Exception:  # PIL's plugins raise many types for a broken file; all mean "skip"
            return index, None


def _collate(
    items: list[tuple[int, torch.Tensor | None]],
) -> tuple[list[int], torch.Tensor | None, list[int]]:
    read = [(i, t) for i, t in items if t is not None]
    failed = [i for i, t in items if t is None]
    batch = torch.stack([t for _, t in read]) if read else None
    return [i for i, _ in read], batch, failed


def image_loader(
    image_dir: Path,
    names: Sequence[str],
    input_size: int,
    *,
    batch_size: int = 32,
    num_workers: int = 0,
) -> DataLoader:
    """Batches ``(read, images, failed)`` of the named files, in order.

    ``read`` and ``failed`` are indices into ``names``; ``images`` is a [B, 3, S, S]
    tensor in [0, 1] (see :func:`load_image`), or None when no file of the batch could be
    read.
    """
    return DataLoader(
        _ImageFiles(image_dir, names, input_size),
        batch_size=batch_size,
        shuffle=False,
        num_workers=num_workers,
        collate_fn=_collate,
    )


class _Extremes:
    """Running top-k (or bottom-k) images per channel, exact and batch-size independent."""

    def __init__(self, k: int, descending: bool) -> None:
        self.k = k
        self.descending = descending
        self.value: torch.Tensor | None = None  # [C, k]
        self.index: torch.Tensor | None = None  # [C, k] image index
        self.pos: torch.Tensor | None = None  # [C, k] flat spatial position

    def update(self, value: torch.Tensor, index: torch.Tensor, pos: torch.Tensor) -> None:
        """Merge a batch: value, index and pos are [C, B], images in increasing index."""
        if self.value is not None:
            value = torch.cat([self.value, value], dim=1)
            index = torch.cat([self.index, index], dim=1)
            pos = torch.cat([self.pos, pos], dim=1)
        # Stable: kept candidates come first and have smaller indices, so on a tie the
        # earlier image wins, whatever the batch size (torch.topk breaks ties arbitrarily).
        order = torch.sort(value, dim=1, descending=self.descending, stable=True).indices
        order = order[:, : self.k]
        self.value = value.gather(1, order)
        self.index = index.gather(1, order)
        self.pos = pos.gather(1, order)


class _Histogram:
    """Exact one-pass histograms with power-of-two bin widths (see the module docstring)."""

    def __init__(self, channels: int, bins: int, device: torch.device) -> None:
        self.bins = bins
        self.counts = torch.zeros(channels, bins, dtype=torch.int64, device=device)
        self.exponent: torch.Tensor | None = None  # [C] int64, bin width 2**exponent
        self.start: torch.Tensor | None = None  # [C] int64, first bin is lattice cell `start`
        self.low: torch.Tensor | None = None  # [C] running minimum
        self.high: torch.Tensor | None = None  # [C] running maximum
        self._offset = (torch.arange(channels, device=device) * bins).view(1, channels, 1)

    def _fit(self, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
        """Smallest exponent per channel whose bins hold [low, high] (float64 is exact)."""
        low, high = low.double(), high.double()
        exponent = torch.floor(torch.log2((high - low) / self.bins)).clamp(min=MIN_BIN_EXPONENT)
        if self.exponent is not None:
            exponent = torch.maximum(exponent, self.exponent.double())
        while True:
            scale = torch.exp2(-exponent)
            short = torch.floor(high * scale) - torch.floor(low * scale) >= self.bins
            if not bool(short.any()):
                return exponent.long()
            exponent = exponent + short.double()

    def update(self, flat: torch.Tensor, low: torch.Tensor, high: torch.Tensor) -> None:
        """Count a batch ``flat`` [B, C, H*W] whose per-channel extremes are low, high [C]."""
        if self.low is not None:
            low, high = torch.minimum(low, self.low), torch.maximum(high, self.high)
        exponent = self._fit(low, high)
        start = torch.floor(low.double() * torch.exp2(-exponent.double())).long()
        if self.exponent is not None:
            # Old cell j is lattice cell start+j at the old width; at 2**shift times the
            # width it falls in cell floor((start+j) / 2**shift). Empty cells may fall
            # outside the new window; clamping them adds zeros.
            shift = (exponent - self.exponent).clamp(max=62).unsqueeze(1)
            cells = self.start.unsqueeze(1) + torch.arange(self.bins, device=low.device)
            cells = torch.div(cells, torch.ones_like(shift) << shift, rounding_mode="floor")
            target = (cells - start.unsqueeze(1)).clamp(0, self.bins - 1)
            self.counts = torch.zeros_like(self.counts).scatter_add_(1, target, self.counts)
        self.exponent, self.start, self.low, self.high = exponent, start, low, high

        # floor(x * 2**-e) is exact in float32. Moving cell `start` of channel c to bin
        # c * bins is exact too: in one add while everything stays below 2**23, where
        # float32 holds every half-integer, else by subtracting `start` first, exact
        # because both are integers close together. +0.5 puts each value at its bin's
        # centre so that histc's own arithmetic cannot push it across an edge.
        total = self.counts.numel()
        scale = torch.exp2(-exponent.to(flat.dtype)).view(1, -1, 1)
        cell = (flat * scale).floor_()
        if int(start.abs().max()) + total < 2**22:
            cell.add_((self._offset - start.view(1, -1, 1)).to(flat.dtype) + 0.5)
        else:
            cell.sub_(start.to(flat.dtype).view(1, -1, 1))
            cell.add_(self._offset.to(flat.dtype) + 0.5)
        counts = torch.histc(cell, bins=total, min=0, max=total)
        self.counts += counts.view_as(self.counts).long()

    def edges(self) -> torch.Tensor:
        assert self.exponent is not None and self.start is not None
        width = torch.exp2(self.exponent.double()).unsqueeze(1)
        cells = self.start.unsqueeze(1) + torch.arange(self.bins + 1, device=width.device)
        return cells.double() * width


class _LayerState:
    def __init__(self, name: str, k: int, bins: int) -> None:
        self.name = name
        self.k = k
        self.bins = bins
        self.grid: tuple[int, int] | None = None
        self.top = _Extremes(k, descending=True)
        self.bottom = _Extremes(k, descending=False)
        self.histogram: _Histogram | None = None

    def update(self, output: object, first: int) -> None:
        """Take one batch of this layer's output; ``first`` is its first image's index."""
        if not isinstance(output, torch.Tensor) or output.ndim not in (2, 4):
            raise ValueError(
                f"layer {self.name} gives {type(output).__name__} "
                f"{getattr(output, 'shape', '')}; dataset examples need [B, C, H, W] or [B, C]"
            )
        activation = output.float() if output.ndim == 4 else output.float()[:, :, None, None]
        size, channels, height, width = activation.shape
        if self.histogram is None:
            self.grid = (height, width)
            self.histogram = _Histogram(channels, self.bins, activation.device)
        flat = activation.flatten(2)
        # torch.max/min along a dim return the first extreme position: row-major order.
        high, high_pos = flat.max(dim=2)
        low, low_pos = flat.min(dim=2)
        # max/min propagate NaN, so checking the extremes checks every value.
        if not (bool(torch.isfinite(high).all()) and bool(torch.isfinite(low).all())):
            raise ValueError(f"layer {self.name} gives NaN or infinite activations")
        index = torch.arange(first, first + size, device=flat.device).expand(channels, size)
        self.top.update(high.T, index, high_pos.T)
        self.bottom.update(low.T, index, low_pos.T)
        self.histogram.update(flat, low.amin(dim=0), high.amax(dim=0))

    def result(self) -> LayerExamples:
        assert self.grid is not None and self.histogram is not None
        width = self.grid[1]

        def pos(flat: torch.Tensor) -> np.ndarray:
            flat = flat.cpu()
            return torch.stack([flat // width, flat % width], dim=-1).numpy()

        top, bottom = self.top, self.bottom
        return LayerExamples(
            name=self.name,
            grid=self.grid,
            top_index=top.index.cpu().numpy(),
            top_value=top.value.cpu().numpy(),
            top_pos=pos(top.pos),
            bottom_index=bottom.index.cpu().numpy(),
            bottom_value=bottom.value.cpu().numpy(),
            bottom_pos=pos(bottom.pos),
            hist_counts=self.histogram.counts.cpu().numpy(),
            hist_edges=self.histogram.edges().cpu().numpy(),
        )


def _model_device(model: nn.Module) -> torch.device:
    for tensor in model.parameters():
        return tensor.device
    return torch.device("cpu")


def sweep(
    model: nn.Module,
    organism: Organism,
    image_dir: Path,
    *,
    layers: list[str] | None = None,
    k: int = 16,
    bins: int = 50,
    batch_size: int = 32,
    device: str | torch.device | None = None,
    num_workers: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> SweepResult:
    """Run every image of ``image_dir`` through ``model`` once and collect dataset examples.

    Args:
        model: the organism's network, already on ``device``.
        organism: gives the layers, the input size and the preprocessing.
        image_dir: a folder of .jpg/.jpeg/.png files (any depth), taken in name order.
        layers: layer names or aliases; all significant layers by default.
        k: how many top and bottom images to keep per channel.
        bins: histogram bins per channel.
        device: where to run; by default where the model's parameters are.
        progress: called after each batch with (files done, files in total).

    Returns:
        The examples per layer; unreadable files are listed in ``skipped``, not raised.

    Raises:
        ValueError: on bad arguments or when no file of the folder can be read.
    """
    if k < 1 or bins < 1 or batch_size < 1:
        raise ValueError("k, bins and batch_size must be at least 1")
    image_dir = Path(image_dir)
    if not image_dir.is_dir():
        raise ValueError(f"{image_dir} is not a folder")
    device = torch.device(device) if device is not None else _model_device(model)
    names = list_images(image_dir)
    loader = image_loader(
        image_dir, names, organism.input_size, batch_size=batch_size, num_workers=num_workers
    )
    modules = organism.modules(model, layers)
    states = {name: _LayerState(name, k, bins) for name in modules}
    images: list[str] = []
    skipped: list[str] = []
    done = 0
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode(), capture(modules) as outputs:
            for read, batch, failed in loader:
                skipped.extend(names[i] for i in failed)
                if batch is not None:
                    first = len(images)
                    images.extend(names[i] for i in read)
                    model(organism.preprocess(batch.to(device)))
                    for name, state in states.items():
                        state.update(outputs[name], first)
                    outputs.clear()  # let the batch's activations go before the next one
                done += len(read) + len(failed)
                if progress is not None:
                    progress(done, len(names))
    finally:
        model.train(was_training)
    if not images:
        raise ValueError(f"no readable image in {image_dir} ({len(skipped)} files skipped)")
    return SweepResult(
        images=images,
        layers={name: state.result() for name, state in states.items()},
        skipped=skipped,
        input_size=organism.input_size,
        fields=receptive_fields(model, organism, list(modules)),
    )
