"""Feature visualization: many channels optimized together, one image per channel.

The recipe is Lucid's, as ported by lucent: an FFT image parameterization with
decorrelated colour (``lucent.optvis.param``), lucent's ``standard_transforms`` (pad 12,
jitter 8, scale 0.9-1.1, rotate +-10 degrees, jitter 4), Adam at lr 0.05 for 512 steps, and
128 px images upsampled to the model's input size before its preprocessing (or, with
``upsample=False``, fed as they are, as Lucid's original recipe did: the preview tier).

The render loop is ours, for speed and hygiene:

- One batch holds one image per channel (four for ``diversity``). The loss is the sum of
  each image's own objective, so an image's gradient depends on its own channel only.
- The render runs a copy of the model made for it (:func:`render_copy`), never the caller's:
  in eval mode, weights frozen, each eval-mode BatchNorm folded into the convolution that
  feeds it, and on the CPU in channels-last memory format with its 1x1 convolutions on
  oneDNN (when torch runs one thread). The forward pass stops at the target layer;
  gradients go to the image only (``torch.autograd.grad``).
- The caller's model is left as given: no hook, same weights, same train/eval flags.
  Nothing is printed or shown.
- An image depends on ``(seed, channel)`` only, not on which channels share its batch: its
  starting spectrum comes from its own generator seeded with ``(seed, channel)``, and the
  random transforms, drawn once per step for the whole batch as lucent does, come from a
  ``numpy.random.RandomState(seed)`` restarted for each batch. Global RNGs are untouched.
  The one caveat is floating point: kernels split their sums by the batch's shape (oneDNN
  and cuDNN pick kernels by batch size, and even PyTorch's own CPU kernels do on AVX-512),
  which can move the last bit of an activation and, over many steps, a pixel value or two.
  A float64 render of the channel objective with PyTorch's own kernels
  (``torch.backends.mkldnn.flags(enabled=False)``) gives a channel the same image bit for
  bit alone or in any batch; a test checks it. (The losses themselves are taken in float32.)
  Renders are repeatable bit for bit on the CPU; on CUDA, up to its non-deterministic
  kernels.
- Threads: oneDNN and torch's reductions split their sums by the thread count, and over
  the steps the images part (measured: max 98/255 between 1 and 2 threads). So a CPU
  render runs on :data:`CPU_THREADS` threads whatever torch is set to: the same on every
  machine, the pixels depend on the CPU's vector width at most (AVX2 or AVX-512), which
  :func:`made_on` records with each artifact. A CPU worker runs a process per core.
- Folding BatchNorm is exact in real numbers; in floating point an activation moves by a
  few units in the last place, which, like the kernel choice above, can move a pixel value
  or two after many steps. The images still depend on ``(seed, channel)`` only.

Speed on the CPU (``bench/featurevis.py`` compares with lucent and gives the figures):
about nine tenths of a step is the forward and backward pass up to the layer, and
MobileNetV2-like networks are memory-bound there (BatchNorm, ReLU6 and depthwise
convolutions stream whole activations through memory), so batching buys little. What
pays: folding BatchNorm (one pass over the activations fewer, forward and backward: about
a quarter of that time), channels-last convolutions (10-20% faster for every organism
here), 1x1 convolutions on oneDNN with one thread (:class:`_OneDnnPointwise`, 12-18%),
in-place ReLU6s that copy nothing (:class:`_InPlaceReLU6`, about 8% of a MobileNetV2
render) and small batches (:func:`cpu_batch_images`). Tried and not kept: each
convolution fused with its ReLU6 into one oneDNN primitive (the same numbers, 10-20%
faster a convolution alone, but no faster in a render: within 1%).

lucent's ``param`` and ``transform`` place their tensors on a module-level device (the first
GPU whenever one exists) and draw from the global RNGs, so the few lines used here are
restated with the caller's device and our generators, with lucent's constants; tests check
that they give the same pixels as lucent's own functions.
"""

from __future__ import annotations

import copy
import ctypes
import functools
import io
import itertools
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

import kornia
import numpy as np
import torch
import torch.nn.functional as F
from kornia.geometry.transform import translate
from lucent.modelzoo.inceptionv1.helper_layers import ReluLayer
from lucent.optvis.param.color import color_correlation_normalized
from lucent.optvis.param.spatial import rfft2d_freqs
from PIL import Image
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet

from render.hooks import capture, stop_after
from render.organisms import LayerDecl, Organism
from render.params import DIVERSITY_IMAGES, DIVERSITY_WEIGHT, OBJECTIVES, FeatureVisParams

__all__ = [
    "CPU_IMAGES_PER_THREAD",
    "DIVERSITY_IMAGES",
    "DIVERSITY_WEIGHT",
    "OBJECTIVES",
    "FeatureVisParams",
    "cpu_batch_images",
    "random_transforms",
    "render_channels",
    "render_copy",
    "spectrum_to_rgb",
    "to_png",
]

# lucent's fft_image: the spectrum's initial standard deviation and its "magic" divisor.
_SPECTRUM_SD = 0.01
_SPECTRUM_MAGIC = 4.0
# lucent's standard_transforms.
_PAD = 12
_SCALES = [1 + (i - 5) / 50.0 for i in range(11)]
_ANGLES = list(range(-10, 11)) + 5 * [0]
# Images optimized together at most on the CPU, per torch thread, whatever the batch size
# asked. Past four the activations outgrow the cache. Two were faster while glibc faulted a
# step's buffers in again at every step (64 px, one thread, at 1/2/4 images: MobileNetV2
# features_10 16/14/18 ms, 12 ms at 4 with its thresholds raised); since a render keeps
# that memory (reuse_freed_memory), four are: 4 channels, 16 steps, 128 px upsampled, one
# thread, means of 4 interleaved runs at 2/4 images: MobileNetV2 features_10 2.65/2.32 s,
# InceptionV1 mixed4a 9.81/9.33 s.
CPU_IMAGES_PER_THREAD = 4
# Threads of a CPU render, whatever torch is set to: pixels do not depend on the machine's
# core count (see the module's notes); one process per core uses the others.
CPU_THREADS = 1
_PRE = "pre-activation"  # its key among the captured inputs


def _conv_bn_pairs(module: nn.Module) -> list[tuple[str, str]]:
    """Names of children ``(a, b)`` where ``module``'s forward feeds ``a``'s output to ``b`` alone.

    Known from the code, not guessed from names: an ``nn.Sequential`` (which covers
    torchvision's ``Conv2dNormActivation`` and MobileNetV2's ``InvertedResidual``), and
    torchvision's ResNet stem and blocks, whose forward runs ``bnN(convN(x))``.
    """
    if isinstance(module, nn.Sequential):
        names = list(module._modules)
        return list(itertools.pairwise(names))
    if isinstance(module, ResNet | BasicBlock | Bottleneck):
        return [(f"conv{i}", f"bn{i}") for i in (1, 2, 3)]
    return []


def _foldable(conv: nn.Module | None, bn: nn.Module | None, kept: set[int]) -> bool:
    return (
        type(conv) is nn.Conv2d
        and type(bn) is nn.BatchNorm2d
        and bn.num_features == conv.out_channels
        and bn.running_mean is not None
        and bn.running_var is not None
        and not {id(conv), id(bn)} & kept  # a visualized layer keeps its own output
    )


class _OneDnnPointwiseFunction(torch.autograd.Function):
    """A 1x1, stride-1 convolution on oneDNN, with the gradient for its input only."""

    @staticmethod
    def forward(
        ctx: torch.autograd.function.FunctionCtx,
        x: torch.Tensor,
        weight: torch.Tensor,
        bias: torch.Tensor | None,
    ) -> torch.Tensor:
        ctx.save_for_backward(weight)
        ctx.channels_last = x.is_contiguous(memory_format=torch.channels_last)
        return torch.mkldnn_convolution(x, weight, bias, (0, 0), (1, 1), (1, 1), 1)

    @staticmethod
    def backward(
        ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor
    ) -> tuple[torch.Tensor, None, None]:
        (weight,) = ctx.saved_tensors
        layout = torch.channels_last if ctx.channels_last else torch.contiguous_format
        # d(W x)/dx is W transposed: another 1x1 convolution, from the output's channels.
        grad = grad.contiguous(memory_format=layout)
        return (
            torch.mkldnn_convolution(grad, weight.transpose(0, 1), None, (0, 0), (1, 1), (1, 1), 1),
            None,
            None,
        )


class _OneDnnPointwise(nn.Conv2d):
    """A frozen 1x1, stride-1 Conv2d that runs on oneDNN on the CPU, forward and backward.

    With one thread, PyTorch sends 1x1 convolutions of fewer than 16 images to its own
    im2col kernels, which its source deems faster there; on the CPUs here oneDNN is about 2x
    faster, forward and backward (MobileNetV2's, channels-last, 4 images), and a MobileNetV2
    render takes 12-18% less time. With more threads PyTorch picks oneDNN itself. Anywhere
    else, or with ``torch.backends.mkldnn`` disabled or weights that want a gradient, it is
    the plain Conv2d.
    """

    @classmethod
    def replacing(cls, conv: nn.Conv2d) -> _OneDnnPointwise:
        pointwise = cls(
            conv.in_channels,
            conv.out_channels,
            kernel_size=1,
            bias=conv.bias is not None,
            device="meta",  # the weights are conv's own, set just below
        )
        pointwise.weight, pointwise.bias = conv.weight, conv.bias
        return pointwise

    @staticmethod
    def suits(conv: nn.Module) -> bool:
        return (
            type(conv) is nn.Conv2d
            and conv.kernel_size == (1, 1)
            and conv.stride == (1, 1)
            and conv.padding in ((0, 0), "valid")
            and conv.dilation == (1, 1)
            and conv.groups == 1
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (
            x.device.type != "cpu"
            or torch.get_num_threads() > 1
            or x.dtype != torch.float32
            or not torch.backends.mkldnn.enabled
            or any(p.requires_grad for p in self.parameters())
        ):
            return super().forward(x)
        return _OneDnnPointwiseFunction.apply(x, self.weight, self.bias)


class _InPlaceReLU6Function(torch.autograd.Function):
    """ReLU6 in place, its gradient taken from its output."""

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, x: torch.Tensor) -> torch.Tensor:
        x.clamp_(0.0, 6.0)
        ctx.mark_dirty(x)
        ctx.save_for_backward(x)
        return x

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor) -> torch.Tensor:
        (y,) = ctx.saved_tensors
        # The gradient passes where the input was strictly inside (0, 6), which is where the
        # output is: the same mask as hardtanh_backward of the input, so the same numbers.
        return torch.ops.aten.hardtanh_backward(grad, y, 0.0, 6.0)


class _InPlaceReLU6(nn.ReLU6):
    """An in-place ReLU6 that does not copy its input when a gradient flows through it.

    Autograd copies the input of an in-place ``hardtanh_`` (what ``ReLU6(inplace=True)``
    runs) for its backward pass: a pass over the activation that costs 8x the clamp itself,
    at every ReLU6 of MobileNetV2 (about 8% of a render on the CPU, measured with
    torch.profiler: the copies went from 139 to 46 ms of 1.5 s, the clamps from 26 to 0).
    The output says as much as the input about where the gradient passes, and is kept
    instead. Forward and gradient are bit for bit those of ``nn.ReLU6``, and so are the
    images; without a gradient, or with ``inplace`` off (a visualized layer's own ReLU6,
    whose input is read as the pre-activation), it is ``nn.ReLU6``.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.inplace and x.requires_grad and torch.is_grad_enabled():
            return _InPlaceReLU6Function.apply(x)
        return super().forward(x)


def render_copy(model: nn.Module, *, keep: Sequence[str] = (), cpu: bool = False) -> nn.Module:
    """A copy of ``model`` made for rendering; ``model`` itself is not touched.

    The copy is in eval mode with its weights frozen (``requires_grad=False``: no weight
    gradient is ever computed). Each BatchNorm2d that directly follows a Conv2d (see
    :func:`_conv_bn_pairs`) is folded into it with its running statistics, which is what
    the eval-mode BatchNorm computes, one pass over the activations fewer, forward and
    backward. Outputs match the model's up to floating-point rounding. In-place ReLU6s keep
    their output rather than a copy of their input for the backward pass
    (:class:`_InPlaceReLU6`: the same numbers).

    Args:
        model: the network, on any device.
        keep: module paths (``"features.3"``) whose own output must stay as it is: a
            BatchNorm or Conv2d named here is not folded.
        cpu: also make the copy fast on the CPU: channels-last weights (feed it
            channels-last inputs) and 1x1 convolutions on oneDNN where it is available.
    """
    prepared = copy.deepcopy(model).eval()  # folding reads eval-mode BatchNorm
    kept = {id(prepared.get_submodule(path)) for path in keep}
    for parent in list(prepared.modules()):
        for conv_name, bn_name in _conv_bn_pairs(parent):
            conv, bn = getattr(parent, conv_name, None), getattr(parent, bn_name, None)
            if _foldable(conv, bn, kept):
                setattr(parent, conv_name, fuse_conv_bn_eval(conv, bn))
                setattr(parent, bn_name, nn.Identity())
    pointwise = cpu and torch.backends.mkldnn.is_available()
    for parent in list(prepared.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is nn.ReLU6 and child.inplace:
                setattr(parent, name, _InPlaceReLU6(inplace=True))
            elif pointwise and _OneDnnPointwise.suits(child):
                setattr(parent, name, _OneDnnPointwise.replacing(child))
    if cpu:
        prepared = prepared.to(memory_format=torch.channels_last)
    return prepared.eval().requires_grad_(False)  # new modules included


@contextmanager
def _fast_cuda(device: torch.device) -> Iterator[None]:
    # The model always sees input_size x input_size, so cuDNN's autotuning pays off.
    if device.type != "cuda":
        yield
        return
    deterministic = torch.backends.cudnn.deterministic  # a caller's choice wins
    with torch.backends.cudnn.flags(
        enabled=True, benchmark=not deterministic, deterministic=deterministic, allow_tf32=True
    ):
        yield


def _spectrum_scale(size: int, device: torch.device) -> torch.Tensor:
    freqs = rfft2d_freqs(size, size)
    scale = 1.0 / np.maximum(freqs, 1.0 / size)  # decay_power 1, as lucent
    return torch.tensor(scale).float()[None, None, ..., None].to(device)


def _initial_spectrum(seed: int, channel: int, count: int, size: int) -> torch.Tensor:
    """lucent's random spectrum for ``count`` images, drawn from ``(seed, channel)`` alone."""
    state = np.random.SeedSequence([seed, channel]).generate_state(1, dtype=np.uint64)[0]
    generator = torch.Generator().manual_seed(int(state))
    shape = (count, 3, *rfft2d_freqs(size, size).shape, 2)
    # Drawn on the CPU so that every device starts from the same numbers.
    return torch.randn(shape, generator=generator) * _SPECTRUM_SD


def spectrum_to_rgb(spectrum: torch.Tensor, size: int) -> torch.Tensor:
    """lucent's ``fft_image`` + ``to_valid_rgb(decorrelate=True)``, on ``spectrum``'s device.

    Args:
        spectrum: ``(batch, 3, size, size // 2 + 1, 2)`` real and imaginary parts.

    Returns:
        ``(batch, 3, size, size)`` RGB in [0, 1].
    """
    scaled = _spectrum_scale(size, spectrum.device) * spectrum
    image = torch.fft.irfftn(torch.view_as_complex(scaled), s=(size, size), norm="ortho")
    image = image[:, :3, :size, :size] / _SPECTRUM_MAGIC
    colors = torch.tensor(color_correlation_normalized.T, dtype=image.dtype, device=image.device)
    image = torch.matmul(image.permute(0, 2, 3, 1), colors).permute(0, 3, 1, 2)
    # The permutes leave a channels-last layout; the transforms get the standard one, and
    # the model whichever suits its copy (render_channels sets it just before the call).
    return torch.sigmoid(image.contiguous())


def _jitter(image: torch.Tensor, d: int, rng: np.random.RandomState) -> torch.Tensor:
    dx, dy = rng.choice(d), rng.choice(d)
    shift = torch.tensor([[dx, dy]], dtype=image.dtype, device=image.device)
    return translate(image, shift)


def _random_scale(image: torch.Tensor, rng: np.random.RandomState) -> torch.Tensor:
    scale = rng.choice(_SCALES)
    h, w = image.shape[2:]
    new_h, new_w = (int(np.ceil(scale * d)) for d in (h, w))
    pad_x = max(0, int(np.ceil((w - new_w) / 2)))
    pad_y = max(0, int(np.ceil((h - new_h) / 2)))
    scaled = F.interpolate(image, size=(new_h, new_w), mode="bilinear", align_corners=True)
    return F.pad(scaled, [pad_y, pad_x] * 2)  # lucent's order, harmless on square images


def _random_rotate(image: torch.Tensor, rng: np.random.RandomState) -> torch.Tensor:
    b, _, h, w = image.shape
    angle = torch.ones(b, device=image.device) * rng.choice(_ANGLES)
    center = torch.ones(b, 2, device=image.device)
    center[..., 0] = (w - 1) / 2
    center[..., 1] = (h - 1) / 2
    matrix = kornia.get_rotation_matrix2d(center, angle, torch.ones(b, 2, device=image.device))
    return kornia.warp_affine(image, matrix, dsize=(h, w))


def random_transforms(rng: np.random.RandomState) -> Callable[[torch.Tensor], torch.Tensor]:
    """lucent's ``standard_transforms``, drawing from ``rng`` in lucent's order.

    Each call draws one transform for the whole batch, as lucent does, so that every image
    of a batch sees the same sequence whatever the batch holds.
    """

    def apply(image: torch.Tensor) -> torch.Tensor:
        image = F.pad(image, [_PAD] * 4, mode="constant", value=0.5)
        image = _jitter(image, 8, rng)
        image = _random_scale(image, rng)
        image = _random_rotate(image, rng)
        return _jitter(image, 4, rng)

    return apply


def _final_relu(module: nn.Module) -> nn.Module | None:
    """The ReLU whose output is ``module``'s, if any: ``module`` itself (AlexNet's layers,
    InceptionV1's conv2d0-2) or the last of an ``nn.Sequential`` (torchvision's
    ``Conv2dNormActivation``: MobileNetV2's features_0 and features_18). Its input is the
    layer's pre-activation."""
    while isinstance(module, nn.Sequential) and len(module):
        module = module[-1]
    return module if isinstance(module, nn.ReLU | nn.ReLU6 | ReluLayer) else None


def _mean(picked: torch.Tensor) -> torch.Tensor:
    return picked.mean(dim=(1, 2))


def _mean_negated(picked: torch.Tensor) -> torch.Tensor:
    return -picked.mean(dim=(1, 2))


def _centre_negated(picked: torch.Tensor) -> torch.Tensor:
    h, w = picked.shape[1:]
    return -picked[:, h // 2, w // 2]


def _diversity_term(acts: torch.Tensor, per_channel: int) -> torch.Tensor:
    return DIVERSITY_WEIGHT * _similarity(acts, per_channel)


@dataclass(frozen=True)
class _Objective:
    """lucent's objective as a loss: each image's own term (of its channel's map,
    ``(images, H, W) -> (images,)``), averaged over its channel's group as lucent averages
    over its batch, plus a term of the whole group where the objective has one."""

    per_image: Callable[[torch.Tensor], torch.Tensor]
    per_group: Callable[[torch.Tensor, int], torch.Tensor] | None = None


_OBJECTIVES = {
    "channel": _Objective(_mean_negated),
    "neuron": _Objective(_centre_negated),
    "negative": _Objective(_mean),
    "diversity": _Objective(_mean_negated, _diversity_term),
}


def _image_losses(
    acts: torch.Tensor, channels: torch.Tensor, objective: str, per_channel: int
) -> torch.Tensor:
    """The loss of each channel's group of images (lucent's objectives, negated).

    ``acts`` is ``(images, C, H, W)``; image ``i`` belongs to channel ``channels[i]``.
    """
    picked = acts[torch.arange(acts.shape[0], device=acts.device), channels]  # (images, H, W)
    chosen = _OBJECTIVES[objective]
    losses = chosen.per_image(picked).view(-1, per_channel).mean(dim=1)
    if chosen.per_group is not None:
        losses = losses + chosen.per_group(acts, per_channel)
    return losses


def _similarity(acts: torch.Tensor, per_channel: int) -> torch.Tensor:
    """lucent's ``diversity`` term, negated, within each channel's group of images.

    The summed cosine similarity between the Gram matrices of every pair of images of a
    group, divided by the group's size.
    """
    flat = acts.flatten(2)  # (images, C, H*W)
    grams = F.normalize(torch.matmul(flat, flat.transpose(1, 2)).flatten(1), p=2, dim=1)
    grams = grams.view(-1, per_channel, grams.shape[1])
    pairs = torch.matmul(grams, grams.transpose(1, 2))  # (groups, n, n)
    self_pairs = torch.diagonal(pairs, dim1=1, dim2=2).sum(dim=1)
    return (pairs.sum(dim=(1, 2)) - self_pairs) / per_channel


def _to_uint8(rgb: torch.Tensor) -> list[np.ndarray]:
    array = rgb.detach().permute(0, 2, 3, 1).float().cpu().numpy()
    return list(np.clip(np.round(array * 255), 0, 255).astype(np.uint8))


def cpu_batch_images() -> int:
    """The most images a CPU render optimizes together, for torch's current thread count."""
    return CPU_IMAGES_PER_THREAD * torch.get_num_threads()


def _resolve(device: str | torch.device) -> torch.device:
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"cannot render on {device}: CUDA is not available here; use cpu")
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    return device


def _model_device(model: nn.Module) -> torch.device | None:
    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return None


def _layer_decl(organism: Organism, layer: str) -> LayerDecl:
    try:
        return organism.layer(layer)
    except KeyError:
        known = ", ".join(d.name for d in organism.layers)
        raise ValueError(
            f"{organism.slug} has no layer {layer!r}; its layers are {known}"
        ) from None


def _render_device(model: nn.Module, device: str | torch.device) -> torch.device:
    """``device``, checked to be where the model is."""
    device = _resolve(device)
    model_device = _model_device(model)
    if model_device is not None and _resolve(model_device) != device:
        raise ValueError(
            f"the model is on {model_device} but the render was asked on {device}; "
            f"load it there first (organisms.load(..., device={str(device)!r}))"
        )
    return device


# glibc's mallopt parameters, and what this process sets them to for CPU renders.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_MMAP_ABOVE, _TRIM_ABOVE = 32 << 20, 1 << 30


@functools.cache
def reuse_freed_memory() -> bool:
    """Have this process's C allocator keep the memory that tensors free, for the next ones.

    A render step allocates and frees every activation of the forward and backward pass.
    glibc hands blocks of a few MB straight to and from the OS (``mmap``), and gives back
    the top of its heap past 128 KB, so each step faults every page of its activations in
    again, zeroed by the kernel: 15-25% of a CPU render's time, measured. Raised to
    32 MB (allocations) and 1 GB (heap top), the pages stay and are reused; the process
    then holds its largest step's memory until it exits, which a render worker needs again
    for its next job anyway. This is what PyTorch's CPU tuning guide gets from jemalloc or
    tcmalloc (``LD_PRELOAD``), set from here so that every process that renders on the CPU
    has it: workers, ``--sync`` commands, tests and benches. Elsewhere than glibc (macOS,
    musl) the allocator is left as it is. Returns whether glibc took both settings (under an
    ``LD_PRELOAD``ed jemalloc or tcmalloc they do nothing, and need not).
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the C library this process runs on
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    took = [mallopt(_M_MMAP_THRESHOLD, _MMAP_ABOVE), mallopt(_M_TRIM_THRESHOLD, _TRIM_ABOVE)]
    return all(took)


@contextmanager
def _threads(device: torch.device, threads: int | None) -> Iterator[None]:
    """Torch's thread count set to ``threads`` for the block, on the CPU."""
    if device.type != "cpu" or threads is None or threads == torch.get_num_threads():
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def made_on(device: str | torch.device, threads: int | None = CPU_THREADS) -> dict[str, object]:
    """What besides the recipe can move a render's pixels: device, threads, the CPU's
    vector instructions, torch. Stored with each feature visualization (not in its key: the
    site plans keys without knowing which worker will render)."""
    device = _resolve(device)
    found: dict[str, object] = {"device": device.type, "torch": torch.__version__}
    if device.type == "cpu":
        found["threads"] = threads if threads is not None else torch.get_num_threads()
        found["cpu"] = torch.backends.cpu.get_cpu_capability()
    elif device.type == "cuda":
        found["gpu"] = torch.cuda.get_device_name(device)
    return found


def render_channels(
    model: nn.Module,
    organism: Organism,
    layer: str,
    channels: Sequence[int],
    params: FeatureVisParams = FeatureVisParams(),
    *,
    batch_size: int = 32,
    device: str | torch.device = "cpu",
    progress: Callable[[int, int], None] | None = None,
    step_progress: Callable[[list[int], int], None] | None = None,
    threads: int | None = CPU_THREADS,
) -> dict[int, list[np.ndarray]]:
    """Render a feature visualization of each channel of ``layer``.

    Args:
        model: the organism's network, already on ``device``. Left as given: the render
            runs a copy of it (:func:`render_copy`).
        organism: gives the layer's module, the input size and the preprocessing.
        layer: the layer's name or alias (``"mixed4c"``, ``"4c"``).
        channels: channel indices; duplicates are rendered once.
        params: objective, steps, image size, seed and learning rate.
        batch_size: channels optimized together (``diversity`` puts four images per
            channel in the batch). Changes speed and memory only, not the images. Large
            batches pay on a GPU; on the CPU at most :func:`cpu_batch_images` images (or
            one ``diversity`` channel) are optimized together whatever this says, as more
            are slower per image there.
        device: where to render; the model must be there.
        progress: called with ``(channels done, channels in all)`` after each batch
            (each chunk of :func:`cpu_batch_images` images on the CPU).
        step_progress: called with ``(the batch's channels, step)`` after each
            optimization step; what it raises stops the render (a cancelled job).
        threads: torch threads of a CPU render (restored after); None: as torch is set,
            at the price of pixels that depend on it.

    Returns:
        Each channel's images, ``size x size x 3`` uint8: one, or four for ``diversity``.
    """
    params.validate()
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    decl = _layer_decl(organism, layer)
    device = _render_device(model, device)
    wanted = [int(c) for c in dict.fromkeys(channels)]
    # Measured on the CPU for every organism here; unmeasured on a GPU (none here), where
    # the layout stays as it was.
    channels_last = device.type == "cpu"
    # One copy per call, for this layer: it is dropped, hooks and all, when the call returns.
    prepared = render_copy(model, keep=[decl.module], cpu=channels_last)
    modules = organism.modules(prepared, [decl.name])
    relu = _final_relu(modules[decl.name]) if params.pre_relu_steps else None
    if relu is not None and hasattr(relu, "inplace"):
        relu.inplace = False  # the copy's: its input must stay the pre-activation
    if device.type == "cpu":
        reuse_freed_memory()
    with ExitStack() as stack:
        stack.enter_context(_threads(device, threads))
        stack.enter_context(_fast_cuda(device))
        outputs = stack.enter_context(capture(modules))
        relu_inputs = stack.enter_context(
            capture({_PRE: relu} if relu is not None else {}, inputs=True)
        )

        def layer_output(rgb: torch.Tensor, pre_relu: bool = False) -> torch.Tensor:
            size = organism.input_size
            if params.upsample and (rgb.shape[2] < size or rgb.shape[3] < size):  # lucent's
                rgb = F.interpolate(rgb, size=(size, size), mode="bilinear", align_corners=True)
            x = organism.preprocess(rgb)
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with stop_after(modules[decl.name]):
                prepared(x)
            return relu_inputs[_PRE] if pre_relu and relu is not None else outputs[decl.name]

        with torch.no_grad():
            gray = torch.full((1, 3, params.size, params.size), 0.5, device=device)
            available = layer_output(gray).shape[1]
        wrong = [c for c in wanted if not 0 <= c < available]
        if wrong:
            raise ValueError(
                f"channel {wrong[0]} is out of range for {organism.slug} {decl.name}, "
                f"which has channels 0 to {available - 1}"
            )
        results: dict[int, list[np.ndarray]] = {}
        chunk = batch_size
        if device.type == "cpu":
            chunk = min(batch_size, max(1, cpu_batch_images() // params.images_per_channel))
        for start in range(0, len(wanted), chunk):
            batch = wanted[start : start + chunk]
            images = _optimize(layer_output, batch, params, device, step_progress)
            per = params.images_per_channel
            for i, channel in enumerate(batch):
                results[channel] = images[i * per : (i + 1) * per]
            if progress is not None:
                progress(len(results), len(wanted))
    return results


def _optimize(
    layer_output: Callable[[torch.Tensor, bool], torch.Tensor],
    channels: list[int],
    params: FeatureVisParams,
    device: torch.device,
    step_progress: Callable[[list[int], int], None] | None = None,
) -> list[np.ndarray]:
    per = params.images_per_channel
    spectrum = torch.cat(
        [_initial_spectrum(params.seed, c, per, params.size) for c in channels]
    ).to(device)
    spectrum.requires_grad_(True)
    index = torch.tensor(channels, device=device).repeat_interleave(per)
    optimizer = torch.optim.Adam([spectrum], lr=params.lr)
    # Restarted for every batch: each batch sees the sequence a lone channel would.
    transform = random_transforms(np.random.RandomState(params.seed))
    for step in range(1, params.steps + 1):
        rgb = spectrum_to_rgb(spectrum, params.size)
        acts = layer_output(transform(rgb), step <= params.pre_relu_steps)
        loss = _image_losses(acts.float(), index, params.objective, per).sum()
        # Gradients for the image only: none computed for, or left on, the weights.
        (spectrum.grad,) = torch.autograd.grad(loss, [spectrum])
        optimizer.step()
        if step_progress is not None:
            step_progress(channels, step)
    with torch.no_grad():
        return _to_uint8(spectrum_to_rgb(spectrum, params.size))


def to_png(image: np.ndarray) -> bytes:
    """Encode an ``H x W x 3`` uint8 image as PNG."""
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an HxWx3 uint8 image, got {image.dtype} {image.shape}")
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()
