"""Expanded weights: how strongly each neuron of one layer feeds each neuron of a layer above.

Where two significant layers are joined by a single convolution, the weights between
their neurons are that convolution's kernel. Mostly they are not: InceptionV1's mixed
blocks have four branches with bottlenecks and pools, MobileNetV2's inverted residual
blocks expand, filter depthwise, project and add a skip, ResNet's bottlenecks likewise.
Following the Circuits thread ("Visualizing Weights", Olah et al. 2020) we *linearize*
the path between the two layers and read off its effective kernel, the "expanded weights".

How (one method for every organism):

1. Deep-copy the model (the caller's model is never touched) and swap its nonlinear
   modules for linear stand-ins:

   - ``nn.ReLU``, ``nn.ReLU6``, ``nn.LeakyReLU`` and lucent's ``ReluLayer`` /
     ``RedirectedReluLayer`` become the identity (torchvision models and lucent's
     InceptionV1 call their ReLUs through these modules);
   - ``nn.MaxPool2d`` and lucent's ``MaxPool2dLayer`` become an average pool with the
     same kernel, stride and padding, as in the Circuits work. lucent's InceptionV1 pads
     with ``-inf`` before pooling (``F.pad(..., value=-inf)``); the stand-in turns
     ``-inf`` into 0 first, so the border counts as zero instead of producing NaN.

2. Hook the lower layer's module so that its output is replaced by a leaf tensor ``X``
   of zeros, run the copy, and differentiate the upper layer's output at its centre
   position with respect to ``X`` (one output channel per batch item, so a single
   backward pass yields a block of output channels). The forward pass stops at the
   upper layer, so nothing above it runs.

3. Crop the gradient to the box where it is non-zero (the centre unit's receptive field
   in the lower layer's grid, found with a random probe of all output channels). The
   result is ``weights[c_out, c_in, dy, dx]``: how much input channel ``c_in`` at offset
   ``(dy, dx)`` inside that box adds to output channel ``c_out`` at the centre. As for a
   convolution (cross-correlation), no flip is involved: for a single conv the expanded
   weights *are* its kernel.

What this gets right and where it is an approximation:

- Convolutions, concatenations, additions (residual skips) and average pools are linear:
  exact. BatchNorm in eval mode is affine: exact. Biases are constant and drop out of a
  Jacobian.
- ReLUs become the identity, so the weights describe the path as if every unit in between
  were active: the Circuits convention. A ReLU that is called functionally inside a
  ``forward`` (not through a module) is not replaced and stays nonlinear: the Jacobian
  then holds at the point ``X = 0`` (with biases propagated). None of the registered
  organisms does that.
- Max pools are approximated by average pools (Circuits convention).
- InceptionV1's local response normalisation (a functional call in its ``forward``, after
  ``conv2d0`` and ``conv2d2``) is not linear: it is linearized at the baseline. Its input
  there is ``X = 0`` (or ``X`` pooled: 0 too), where its derivative is ``1 / k**beta = 1``,
  so in effect it is treated as the identity.
- Other activations (sigmoid, SiLU, ...) are left alone and linearized at ``X = 0``.

Per organism:

- InceptionV1 (lucent): ``ReluLayer`` -> identity; ``MaxPool2dLayer`` (stride 1 in the pool
  branches, stride 2 between stages, both after a ``-inf`` pad) -> average pool; the
  four branches' concatenation is exact; LRN (only on the way from ``conv2d0`` to
  ``conv2d1`` and from ``conv2d2`` to ``mixed3a``) as above.
- MobileNetV2: ``ReLU6`` -> identity; expand, depthwise and project convolutions with
  BatchNorm folded in, plus the residual skip where the block has one: exact.
- ResNet-50: ``ReLU`` (also the one after the residual addition) -> identity; the three
  convolutions, BatchNorm and the skip (or its downsampling conv): exact.
- AlexNet: ``ReLU`` -> identity; the max pools after ``conv1`` and ``conv2`` -> average
  pools.

The kernel may be rectangular and off-centre (stride 2 with asymmetric padding). If the
receptive field does not fit in the lower layer's grid, ``X`` is enlarged spatially (the
operations between significant layers are convolutional, so any grid size works); where it
fits easily, ``X`` shrinks to just around it, for speed. Where a tensor from below the
lower layer joins in above it (so grids must match), the natural grid is used.
"""

from __future__ import annotations

import copy
import io
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from render.hooks import stop_after
from render.organisms import LayerDecl, Organism

__all__ = [
    "FIELD_TOLERANCE",
    "Connection",
    "ExpandedWeights",
    "contribution_maps",
    "expanded_weights",
    "heatmap_png",
    "identity_skip",
    "input_ranking",
    "linearized_copy",
    "peak_contributions",
    "strongest_inputs",
    "strongest_outputs",
    "support_box",
]

# Elements of X per backward pass: bounds memory (activations scale with it) while
# keeping passes few. 2**22 floats = 16 MiB for X itself.
_CHUNK_ELEMENTS = 1 << 22
# Input size for passes whose lower layers only have to run, not to be right.
_SMALL_INPUT = 64
# A gradient below this fraction of the largest is outside the receptive field.
FIELD_TOLERANCE = 1e-6


@dataclass(frozen=True)
class ExpandedWeights:
    layer: str  # the upper layer (canonical name)
    below: str  # the lower layer (canonical name)
    weights: np.ndarray  # float32 [len(channels), C_in, kh, kw]
    channels: tuple[int, ...]  # output channels of `layer`, in the order of weights' rows
    # Where in the [kh, kw] box the lower unit under the upper unit sits (same grid
    # position), when both layers have the same grid; None otherwise. An identity skip
    # adds exactly 1 there, from a channel to its namesake.
    centre: tuple[int, int] | None = None
    # Where the box sits when the upper unit at ``upper_at`` is computed: its top-left
    # corner in the lower grid. Other units' boxes are shifted by the stride.
    box_at: tuple[int, int] = (0, 0)
    upper_at: tuple[int, int] = (0, 0)

    def row(self, channel: int) -> np.ndarray:
        """The [C_in, kh, kw] weights into one output channel."""
        try:
            return self.weights[self.channels.index(channel)]
        except ValueError:
            raise KeyError(f"channel {channel} of {self.layer} was not computed") from None

    def learned_row(self, channel: int) -> np.ndarray:
        """The weights into ``channel`` over the learned path alone, for layers joined by
        an identity skip (see :func:`identity_skip`): the skip's 1 from ``channel``'s
        namesake below, at the centre, taken out."""
        if self.centre is None:
            raise ValueError(f"{self.below} and {self.layer} are not on one grid: no identity skip")
        row = self.row(channel).copy()
        row[(channel, *self.centre)] -= 1.0
        return row


@dataclass(frozen=True)
class Connection:
    layer: str
    channel: int
    strength: float  # L2 norm of the kernel
    # +1 excitatory, -1 inhibitory: the sign of what the input adds on the data (the sum
    # of ``contribution``), or of the kernel's sum where no data were given.
    sign: int
    rank: int  # 1-based, among all inputs (or outputs) considered
    kernel: np.ndarray  # [kh, kw]
    # [kh, kw]: the kernel times the input at the upper unit's peaks (peak_contributions).
    contribution: np.ndarray | None = None

    @property
    def drawn(self) -> np.ndarray:
        """What heat maps draw: the contribution where known (red raises the output on the
        data; the map's sum has the sign of ``sign``), else the kernel."""
        return self.kernel if self.contribution is None else self.contribution


# --- linear stand-ins -------------------------------------------------------------------


class _LinearIdentity(nn.Module):
    """Stands in for a ReLU; accepts the extra arguments lucent's layers may get."""

    def forward(self, tensor: torch.Tensor, *_args: object, **_kwargs: object) -> torch.Tensor:
        return tensor


def _avg_pool(
    x: torch.Tensor,
    kernel_size: object,
    stride: object,
    padding: object,
    ceil_mode: bool,
) -> torch.Tensor:
    # lucent pads with -inf so that max pooling ignores the border; for an average the
    # neutral border is 0.
    x = torch.where(torch.isneginf(x), torch.zeros((), dtype=x.dtype, device=x.device), x)
    return F.avg_pool2d(
        x, kernel_size, stride=stride, padding=padding, ceil_mode=ceil_mode, count_include_pad=True
    )


class _LinearMaxPool(nn.Module):
    """Average pool in place of ``nn.MaxPool2d`` (same kernel, stride, padding)."""

    def __init__(self, pool: nn.MaxPool2d) -> None:
        super().__init__()
        if pool.dilation not in (1, (1, 1)) or pool.return_indices:
            raise NotImplementedError("no average-pool stand-in for dilated or indexed pools")
        self.kernel_size = pool.kernel_size
        self.stride = pool.stride if pool.stride is not None else pool.kernel_size
        self.padding = pool.padding
        self.ceil_mode = pool.ceil_mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _avg_pool(x, self.kernel_size, self.stride, self.padding, self.ceil_mode)


class _LinearMaxPoolLayer(nn.Module):
    """Average pool in place of lucent's ``MaxPool2dLayer`` (same call signature)."""

    def forward(
        self,
        tensor: torch.Tensor,
        kernel_size: object = (3, 3),
        stride: object = (1, 1),
        padding: object = 0,
        ceil_mode: bool = False,
    ) -> torch.Tensor:
        return _avg_pool(tensor, kernel_size, stride, padding, ceil_mode)


def _lucent_classes() -> tuple[tuple[type, ...], tuple[type, ...]]:
    try:
        from lucent.modelzoo.inceptionv1 import helper_layers as h
    except ImportError:  # lucent is optional for organisms that do not need it
        return (), ()
    return (h.ReluLayer, h.RedirectedReluLayer), (h.MaxPool2dLayer,)


def _stand_in(module: nn.Module) -> nn.Module | None:
    lucent_relus, lucent_pools = _lucent_classes()
    if isinstance(module, (nn.ReLU, nn.ReLU6, nn.LeakyReLU, *lucent_relus)):
        return _LinearIdentity()
    if isinstance(module, nn.MaxPool2d):
        return _LinearMaxPool(module)
    if isinstance(module, lucent_pools):
        return _LinearMaxPoolLayer()
    return None


def linearized_copy(model: nn.Module, device: str | torch.device = "cpu") -> nn.Module:
    """A copy of ``model`` on ``device``, in eval mode, with ReLUs as identities and max
    pools as average pools (see the module docstring). Hooks on ``model`` are copied with
    it, as ``copy.deepcopy`` does: give a model without hooks (``organisms.load``'s have
    none; lucent's ``render_vis`` leaks them, which is why render/ never calls it).

    The modules are copied; parameters and buffers are shared with ``model`` when they
    already live on ``device`` (copying ResNet-50's takes a second) and the copy never
    writes to them. ``model`` is left as it is.
    """
    tensors = [*model.parameters(), *model.buffers()]
    shared = all(t.device == torch.device(device) for t in tensors)
    memo = {id(t): t for t in tensors} if shared else {}
    lin = copy.deepcopy(model, memo)
    for module in lin.modules():
        for name, child in list(module.named_children()):
            replacement = _stand_in(child)
            if replacement is not None:
                setattr(module, name, replacement)
    if not shared:
        lin = lin.to(device)
        for param in lin.parameters():
            param.requires_grad_(False)
    return lin.eval()


# --- the Jacobian -----------------------------------------------------------------------


def _jacobian_rows(
    lin: nn.Module,
    below: nn.Module,
    above: nn.Module,
    image: torch.Tensor,
    x_shape: tuple[int, int, int],
    cotangents: torch.Tensor,
) -> tuple[torch.Tensor, tuple[int, int]]:
    """Gradient of <cotangents[b], above's output at its centre> w.r.t. below's output.

    ``cotangents`` is [B, C_out]; returns [B, C_in, H, W] for ``x_shape = (C_in, H, W)``,
    and above's grid.
    """
    x = torch.zeros((cotangents.shape[0], *x_shape), device=image.device, requires_grad=True)
    captured: dict[str, torch.Tensor] = {}

    def replace(_m: nn.Module, _i: object, _o: object) -> torch.Tensor:
        return x

    def record(_m: nn.Module, _i: object, output: torch.Tensor) -> None:
        captured["y"] = output

    handles = [below.register_forward_hook(replace), above.register_forward_hook(record)]
    try:
        with torch.enable_grad():
            with stop_after(above) as reached:
                lin(image)
            if not reached():
                raise ValueError("the upper layer did not run after the lower one")
            y = captured["y"]
            centre = (y.shape[2] // 2, y.shape[3] // 2)
            picked = y[:, :, centre[0], centre[1]]  # [B, C_out]
            (grad,) = torch.autograd.grad((picked * cotangents).sum(), x, allow_unused=True)
    finally:
        for handle in handles:
            handle.remove()
    if grad is None:
        raise ValueError("the upper layer does not depend on the lower one")
    return grad, (int(y.shape[2]), int(y.shape[3]))


def _shapes(
    lin: nn.Module, below: nn.Module, above: nn.Module, image: torch.Tensor
) -> tuple[torch.Size, torch.Size]:
    """Output shapes of the two layers for this input (measured, never typed by hand)."""
    shapes: dict[str, torch.Size] = {}

    def record_below(_m: nn.Module, _i: object, output: torch.Tensor) -> None:
        shapes["below"] = output.shape

    def record_above(_m: nn.Module, _i: object, output: torch.Tensor) -> None:
        shapes["above"] = output.shape

    handles = [below.register_forward_hook(record_below), above.register_forward_hook(record_above)]
    try:
        with torch.no_grad(), stop_after(above):
            lin(image)
    finally:
        for handle in handles:
            handle.remove()
    if "above" not in shapes or "below" not in shapes:
        raise ValueError("the layers did not both run in a forward pass")
    if min(shapes["below"][2:]) < 1:
        raise ValueError("the input is too small")
    return shapes["below"], shapes["above"]


def support_box(support: torch.Tensor) -> tuple[slice, slice] | None:
    """The (rows, cols) bounding box of a 2-D mask's true cells; None where there is none."""
    rows = torch.nonzero(support.any(dim=1)).flatten()
    cols = torch.nonzero(support.any(dim=0)).flatten()
    if rows.numel() == 0:
        return None
    return slice(int(rows[0]), int(rows[-1]) + 1), slice(int(cols[0]), int(cols[-1]) + 1)


def _box(support: torch.Tensor) -> tuple[slice, slice]:
    found = support_box(support)
    if found is None:
        raise ValueError("the upper layer's centre does not depend on the lower layer")
    return found


def _touches_border(box: tuple[slice, slice], height: int, width: int) -> bool:
    rows, cols = box
    return rows.start == 0 or cols.start == 0 or rows.stop == height or cols.stop == width


def _layer_pair(organism: Organism, layer: str, below: str | None) -> tuple[LayerDecl, LayerDecl]:
    upper = organism.layer(layer)
    index = organism.layers.index(upper)
    if below is None:
        if index == 0:
            raise ValueError(f"{upper.name} is the lowest significant layer: nothing below it")
        return upper, organism.layers[index - 1]
    lower = organism.layer(below)
    if organism.layers.index(lower) >= index:
        raise ValueError(f"{lower.name} is not below {upper.name}")
    return upper, lower


@dataclass
class _Field:
    """The linearized block between two layers, probed on grids of the lower layer's
    channels: where the upper layer's centre reads from (its receptive field's box)."""

    lin: nn.Module
    below: nn.Module
    above: nn.Module
    device: str | torch.device
    image: torch.Tensor | None = None
    c_in: int = 0
    c_out: int = 0
    # Whether the grid may differ from the one the layers below produce: not where
    # something from below the lower layer joins in above it.
    resizable: bool = True
    out_grid: tuple[int, int] = (0, 0)  # the upper layer's, at the last grid probed

    def rows(self, grid: tuple[int, int], cotangents: torch.Tensor) -> torch.Tensor:
        assert self.image is not None
        grad, self.out_grid = _jacobian_rows(
            self.lin, self.below, self.above, self.image, (self.c_in, *grid), cotangents
        )
        return grad

    def probe(self, grid: tuple[int, int]) -> tuple[slice, slice] | None:
        """The receptive field's box on a grid of this size, None where it does not fit.

        A random mix of all output channels is non-zero wherever any channel's weights are.
        """
        cotangent = torch.randn(1, self.c_out, generator=torch.Generator().manual_seed(0))
        grad = self.rows(grid, cotangent.to(self.device))[0].abs()
        # Relative, not exact zeros: cuDNN's algorithms leave tiny values off the field.
        found = _box((grad > FIELD_TOLERANCE * grad.max()).any(dim=0))
        return None if _touches_border(found, *grid) else found

    def fit(self, input_size: int) -> tuple[tuple[int, int], tuple[slice, slice]] | None:
        """A grid the receptive field fits in with a margin of zeros, and its box there."""
        # The layers below the lower one only have to run for the hook to fire (their
        # output is replaced), so a small input does where the network accepts one.
        for size in (_SMALL_INPUT, input_size):
            self.image = torch.zeros(1, 3, size, size, device=self.device)
            try:
                below_shape, above_shape = _shapes(self.lin, self.below, self.above, self.image)
            except (RuntimeError, ValueError) as exc:
                if size == input_size or isinstance(exc, torch.OutOfMemoryError):
                    raise
                continue
            _, self.c_in, height, width = below_shape
            self.c_out = above_shape[1]
            grid = natural = (height, width)
            for _ in range(6 if self.resizable else 1):  # grow the grid until it fits
                try:
                    box = self.probe(grid)
                except RuntimeError as exc:
                    if grid == natural or isinstance(exc, torch.OutOfMemoryError):
                        raise
                    self.resizable = False  # grids must match
                    break
                if box is not None:
                    return grid, box
                grid = (2 * grid[0] + 1, 2 * grid[1] + 1)
        return None

    def shrink(
        self, grid: tuple[int, int], box: tuple[slice, slice]
    ) -> tuple[tuple[int, int], tuple[slice, slice]]:
        """A smaller grid just around the field, where the same field fits: the cost of
        each pass scales with the grid, and the kernel does not depend on it (the map is
        translation-equivariant)."""
        kh, kw = _size(box)
        for extra in range(2, 6) if self.resizable else ():
            smaller = (kh + extra, kw + extra)
            if smaller[0] >= grid[0] and smaller[1] >= grid[1]:
                break
            try:
                found = self.probe(smaller)
            except RuntimeError as exc:
                if isinstance(exc, torch.OutOfMemoryError):
                    raise
                break
            if found is not None and _size(found) == (kh, kw):
                return smaller, found
        return grid, box


def expanded_weights(
    model: nn.Module,
    organism: Organism,
    layer: str,
    *,
    below: str | None = None,
    channels: Sequence[int] | None = None,
    device: str | torch.device = "cpu",
) -> ExpandedWeights:
    """Expanded weights into ``layer`` from the significant layer below it.

    Args:
        layer: name or alias of a significant layer of ``organism``.
        below: a lower significant layer; by default the one directly below ``layer``.
            Layers further down work too: everything in between is linearized.
        channels: output channels of ``layer`` to compute (all by default).
        device: where to run the linearized copy.

    Returns:
        ``ExpandedWeights`` with ``weights[i]`` the [C_in, kh, kw] kernel into
        ``channels[i]``.
    """
    upper, lower = _layer_pair(organism, layer, below)
    lin = linearized_copy(model, device)
    field = _Field(lin, lin.get_submodule(lower.module), lin.get_submodule(upper.module), device)
    fitted = field.fit(organism.input_size)
    if fitted is None:
        raise ValueError(f"the receptive field of {upper.name} in {lower.name} does not fit")
    c_out = field.c_out
    wanted = list(range(c_out)) if channels is None else [int(c) for c in channels]
    if any(not 0 <= c < c_out for c in wanted):
        raise ValueError(f"{upper.name} has channels 0..{c_out - 1}; asked for {wanted}")
    grid, box = field.shrink(*fitted)
    rows: list[torch.Tensor] = []
    per_pass = max(1, _CHUNK_ELEMENTS // (field.c_in * grid[0] * grid[1]))
    eye = torch.eye(c_out, device=device)
    for start in range(0, len(wanted), per_pass):
        grad = field.rows(grid, eye[wanted[start : start + per_pass]])
        rows.append(grad[:, :, box[0], box[1]].detach().cpu())
    weights = torch.cat(rows).numpy().astype(np.float32, copy=False)
    centre = None
    if field.out_grid == grid:
        centre = (grid[0] // 2 - box[0].start, grid[1] // 2 - box[1].start)
        if not (0 <= centre[0] < weights.shape[2] and 0 <= centre[1] < weights.shape[3]):
            centre = None
    return ExpandedWeights(
        upper.name,
        lower.name,
        weights,
        tuple(wanted),
        centre,
        box_at=(box[0].start, box[1].start),
        upper_at=(field.out_grid[0] // 2, field.out_grid[1] // 2),
    )


def _size(box: tuple[slice, slice]) -> tuple[int, int]:
    return box[0].stop - box[0].start, box[1].stop - box[1].start


# --- rankings and pictures --------------------------------------------------------------


def _strengths(kernels: np.ndarray) -> np.ndarray:
    return np.sqrt((kernels.astype(np.float64) ** 2).sum(axis=(-2, -1)))


def _connections(
    layer: str,
    ids: Sequence[int],
    kernels: np.ndarray,
    top: int,
    contributions: np.ndarray | None = None,
) -> list[Connection]:
    """Strongest first; ``contributions`` are the kernels' maps on the data, where known."""
    strengths = _strengths(kernels)
    order = np.argsort(-strengths, kind="stable")  # ties keep channel order
    connections = []
    for rank, i in enumerate(order[:top], start=1):
        drawn = kernels[i] if contributions is None else contributions[i]
        connections.append(
            Connection(
                layer=layer,
                channel=int(ids[i]),
                strength=float(strengths[i]),
                sign=1 if float(drawn.sum(dtype=np.float64)) >= 0 else -1,
                rank=rank,
                kernel=kernels[i],
                contribution=None if contributions is None else contributions[i],
            )
        )
    return connections


def input_ranking(
    w: ExpandedWeights, channel: int, contributions: np.ndarray | None = None
) -> list[Connection]:
    """Every input of ``channel``, strongest first (ranks 1..C_in). ``contributions``:
    [C_in, kh, kw] maps on the data (:func:`contribution_maps`), for the signs."""
    row = w.row(channel)
    return _connections(w.below, range(row.shape[0]), row, row.shape[0], contributions)


def strongest_inputs(
    w: ExpandedWeights, channel: int, top: int = 10, contributions: np.ndarray | None = None
) -> list[Connection]:
    """The ``top`` channels of ``w.below`` with the strongest expanded weights into
    ``channel`` of ``w.layer``; strength is the L2 norm of the kernel."""
    return input_ranking(w, channel, contributions)[:top]


def strongest_outputs(
    w_above: ExpandedWeights,
    channel: int,
    top: int = 10,
    contributions: np.ndarray | None = None,
) -> list[Connection]:
    """The ``top`` channels of ``w_above.layer`` (among those computed) that ``channel``
    of ``w_above.below`` feeds most strongly. ``contributions``: [C_out, C_in, kh, kw]
    maps on the data, for the signs."""
    maps = None if contributions is None else contributions[:, channel]
    return _connections(w_above.layer, w_above.channels, w_above.weights[:, channel], top, maps)


def contribution_maps(
    w: ExpandedWeights, below: torch.Tensor, above: torch.Tensor, top: int = 8
) -> np.ndarray:
    """[len(w.channels), C_in, kh, kw]: :func:`peak_contributions` of every computed upper
    unit, each over the ``top`` images (of ``below``/``above``'s N) it is most active on.

    Args:
        below: [N, C_in, H, W] the lower layer's activations.
        above: [N, C_out, H', W'] the upper layer's.
    """
    maps = np.zeros(w.weights.shape, dtype=np.float32)
    for i, channel in enumerate(w.channels):
        unit = above[:, channel]
        best = unit.flatten(1).amax(dim=1).argsort(descending=True)[:top]
        maps[i] = peak_contributions(w, w.weights[i], below[best], unit[best])
    return maps


def peak_contributions(
    w: ExpandedWeights,
    kernels: np.ndarray,
    below: torch.Tensor,
    above: torch.Tensor,
) -> np.ndarray:
    """What each input adds to an upper unit at its peak, by the expanded weights: the
    kernel times the input under the unit's receptive field where the unit is most active
    in each image, averaged over images (the linearized path's gradient times input).

    Args:
        kernels: [C_in, kh, kw] weights into the unit (a row of ``w``, or its learned part).
        below: [N, C_in, H, W] the lower layer's activations on N images.
        above: [N, H', W'] the unit's maps on the same images: peaks are their argmax.

    Returns:
        [C_in, kh, kw] contribution maps; their sums are the contributions.
    """
    n, c_in, height, width = below.shape
    kh, kw = kernels.shape[1:]
    stride = (max(1, round(height / above.shape[1])), max(1, round(width / above.shape[2])))
    peaks = above.flatten(1).argmax(dim=1)
    rows, cols = peaks // above.shape[2], peaks % above.shape[2]
    pad = max(kh, kw) + max(stride) * 2 + max(abs(w.box_at[0]), abs(w.box_at[1]))
    padded = F.pad(below.double(), (pad, pad, pad, pad))
    total = np.zeros((c_in, kh, kw))
    for i in range(n):
        top = w.box_at[0] + stride[0] * (int(rows[i]) - w.upper_at[0]) + pad
        left = w.box_at[1] + stride[1] * (int(cols[i]) - w.upper_at[1]) + pad
        total += padded[i, :, top : top + kh, left : left + kw].cpu().numpy()
    return kernels.astype(np.float64) * (total / max(1, n))


def identity_skip(
    model: nn.Module, lower: nn.Module, upper: nn.Module, image: torch.Tensor
) -> bool:
    """Whether ``upper``'s output is ``lower``'s output plus learned terms: a chain of
    blocks with identity skips (torchvision's ``use_res_connect``, as in MobileNetV2's
    inverted residuals), each fed by the one before, from ``lower`` up to ``upper``. Then
    each channel of ``lower`` reaches its namesake in ``upper`` through the skip."""
    blocks = [m for m in model.modules() if getattr(m, "use_res_connect", False) is True]
    if upper not in blocks:
        return False
    ran: list[tuple[nn.Module, object, torch.Tensor]] = []

    def record(module: nn.Module, inputs: tuple[object, ...], output: torch.Tensor) -> None:
        ran.append((module, inputs[0] if inputs else None, output))

    watched = list(dict.fromkeys([lower, *blocks]))
    handles = [m.register_forward_hook(record) for m in watched]
    try:
        with torch.no_grad(), stop_after(upper):
            model(image)
    finally:
        for handle in handles:
            handle.remove()
    starts = [i for i, (m, _, _) in enumerate(ran) if m is lower]
    if not starts:
        return False
    current, last = ran[starts[-1]][2], None
    for module, given, output in ran[starts[-1] + 1 :]:
        if given is current:  # a skip block fed by the chain so far
            current, last = output, module
    return last is upper and ran[-1][0] is upper and ran[-1][2] is current


def heatmap_png(kernel: np.ndarray, size: int = 48, vmax: float | None = None) -> bytes:
    """A [kh, kw] kernel as a PNG: red excitatory, blue inhibitory, white zero.

    The scale is symmetric: ``vmax`` (default: the kernel's largest magnitude) is full
    colour. Pass one ``vmax`` to several kernels to compare them on one scale.
    """
    k = np.asarray(kernel, dtype=np.float64)
    if k.ndim != 2:
        raise ValueError(f"expected a 2-D kernel, got shape {k.shape}")
    scale = float(np.abs(k).max()) if vmax is None else float(vmax)
    v = np.clip(k / scale, -1.0, 1.0) if scale > 0 else np.zeros_like(k)
    pos, neg = np.clip(v, 0, None), np.clip(-v, 0, None)
    rgb = np.stack([1 - neg, 1 - pos - neg, 1 - pos], axis=-1)
    image = Image.fromarray(np.round(rgb * 255).astype(np.uint8), "RGB")
    kh, kw = k.shape
    longest = max(kh, kw)
    shape = (max(1, round(size * kw / longest)), max(1, round(size * kh / longest)))
    image = image.resize(shape, Image.Resampling.NEAREST)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
