"""Feature visualization on CPU with tiny budgets (a few steps, small images)."""

from __future__ import annotations

import copy
import ctypes
import io
import platform
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from torch.profiler import profile

from render import organisms
from render.featurevis import (
    FeatureVisParams,
    _final_relu,
    _image_losses,
    _initial_spectrum,
    _InPlaceReLU6,
    _OneDnnPointwise,
    _similarity,
    cpu_batch_images,
    made_on,
    random_transforms,
    render_channels,
    render_copy,
    reuse_freed_memory,
    spectrum_to_rgb,
    to_png,
)
from render.hooks import capture
from tests.conftest import REPO

LAYER = "features_6"  # early enough to keep every render short
TINY = FeatureVisParams(steps=8, size=32)


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> Iterator[None]:
    # Two threads on two shared, busy cores spin against each other and run many times slower.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def mobilenet() -> organisms.Loaded:
    organism = organisms.get("mobilenet_v2")
    path = organisms.find_weights(organism, Path("/nonexistent"))
    if path is None:
        pytest.skip("MobileNetV2 weights are not installed")
    loaded = organisms.load(organism, path)
    # A smaller input than the real 224 px: a quarter of the work, same code paths.
    return organisms.Loaded(replace(organism, input_size=112), loaded.model, loaded.weights_sha256)


def activation(
    loaded: organisms.Loaded, image: np.ndarray, channel: int, where: str, layer: str = LAYER
) -> float:
    """The channel's mean (or centre) activation at ``layer`` for one uint8 image.

    Averaged over a few draws of the render's random transforms, as its objective sees it:
    lucent's jitter only shifts right and down, so the centre it optimizes is off-centre.
    """
    organism = loaded.organism
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
    transform = random_transforms(np.random.RandomState(123))
    size = organism.input_size
    values = []
    for _ in range(8):
        seen = F.interpolate(transform(x), size=(size, size), mode="bilinear", align_corners=True)
        with torch.no_grad(), capture(organism.modules(loaded.model, [layer])) as outputs:
            loaded.model(organism.preprocess(seen))
        acts = outputs[layer][0, channel]
        h, w = acts.shape
        values.append(float(acts[h // 2, w // 2] if where == "centre" else acts.mean()))
    return float(np.mean(values))


def all_hooks(model: nn.Module) -> int:
    return sum(
        len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
        for m in model.modules()
    )


def test_it_returns_one_uint8_image_per_channel(mobilenet: organisms.Loaded) -> None:
    images = render_channels(mobilenet.model, mobilenet.organism, LAYER, [5, 2], TINY)

    assert list(images) == [5, 2]
    for rendered in images.values():
        assert len(rendered) == 1
        assert rendered[0].shape == (32, 32, 3)
        assert rendered[0].dtype == np.uint8


def test_diversity_returns_four_distinct_images_per_channel(mobilenet: organisms.Loaded) -> None:
    params = FeatureVisParams(objective="diversity", steps=4, size=32)

    images = render_channels(mobilenet.model, mobilenet.organism, LAYER, [1, 2], params)

    for rendered in images.values():
        assert len(rendered) == 4
        assert all(image.shape == (32, 32, 3) for image in rendered)
        assert len({image.tobytes() for image in rendered}) == 4


def test_the_diversity_term_counts_identical_images_as_fully_similar() -> None:
    acts = torch.rand(1, 5, 3, 3).repeat(4, 1, 1, 1)
    different = torch.rand(4, 5, 3, 3)

    # Four identical images: every ordered pair has cosine 1, 4 * 3 pairs / 4 images.
    assert _similarity(acts, 4).item() == pytest.approx(3.0)
    assert _similarity(different, 4).item() < 3.0


@pytest.mark.parametrize(
    ("objective", "where", "sign"),
    [("channel", "mean", 1), ("neuron", "centre", 1), ("negative", "mean", -1)],
)
def test_its_objective_moves_the_activation_the_right_way_as_it_optimizes(
    mobilenet: organisms.Loaded, objective: str, where: str, sign: int
) -> None:
    model, organism = mobilenet.model, mobilenet.organism
    channels = [3, 10]

    # One step in, the image is still the faint noise it starts from.
    start = render_channels(
        model, organism, LAYER, channels, FeatureVisParams(objective=objective, steps=1, size=48)
    )
    end = render_channels(
        model, organism, LAYER, channels, FeatureVisParams(objective=objective, steps=16, size=48)
    )

    for channel in channels:
        before = activation(mobilenet, start[channel][0], channel, where)
        after = activation(mobilenet, end[channel][0], channel, where)
        assert sign * (after - before) > 0.3, (channel, before, after)


def test_a_unit_zero_on_the_grey_start_is_woken_by_its_pre_activation(
    mobilenet: organisms.Loaded,
) -> None:
    # features_18 ends in a ReLU6, and a third of its units are zero everywhere on the grey
    # start: no gradient reaches their image, which stays as it started.
    model, organism = mobilenet.model, mobilenet.organism
    params = FeatureVisParams(steps=16, size=32, lr=0.1)
    start = render_channels(model, organism, "features_18", range(12), replace(params, steps=1))
    plain = render_channels(model, organism, "features_18", range(12), params)
    stuck = [c for c in range(12) if np.array_equal(plain[c][0], start[c][0])]
    assert stuck

    woken = render_channels(
        model, organism, "features_18", stuck, replace(params, pre_relu_steps=8)
    )

    for channel in stuck:
        assert not np.array_equal(woken[channel][0], start[channel][0])
        before = activation(mobilenet, plain[channel][0], channel, "mean", "features_18")
        after = activation(mobilenet, woken[channel][0], channel, "mean", "features_18")
        assert after > before, (channel, before, after)


def test_the_pre_activation_is_found_where_a_layer_ends_in_a_relu() -> None:
    def ends_in_relu(slug: str) -> list[str]:
        organism = organisms.get(slug)
        modules = organism.modules(organism.architecture())  # random weights: the same graph
        return [name for name, module in modules.items() if _final_relu(module) is not None]

    assert ends_in_relu("mobilenet_v2") == ["features_0", "features_18"]
    assert ends_in_relu("alexnet") == ["conv1", "conv2", "conv3", "conv4", "conv5"]
    assert ends_in_relu("inceptionv1") == ["conv2d0", "conv2d1", "conv2d2"]
    assert ends_in_relu("resnet50") == []  # a block's ReLU is called three times in it


def test_a_layer_that_is_its_relu_renders_on_its_pre_activation_too() -> None:
    organism = replace(organisms.get("alexnet"), input_size=64)
    model = organism.architecture().eval()  # random weights
    relus = [m for m in model.modules() if isinstance(m, nn.ReLU)]
    assert relus and all(m.inplace for m in relus)  # torchvision's, in place

    images = render_channels(
        model, organism, "conv2", [0, 1], FeatureVisParams(steps=3, size=32, pre_relu_steps=2)
    )

    assert [len(images[c]) for c in (0, 1)] == [1, 1]
    assert all(m.inplace for m in relus)  # the caller's model is left as it was


def test_an_image_depends_only_on_the_seed_and_its_channel(mobilenet: organisms.Loaded) -> None:
    # Exactly, on any CPU: an image starts from a spectrum drawn from (seed, channel) alone,
    # and no image's loss reaches another image's pixels (its gradient there is exactly 0).
    organism = mobilenet.organism
    start = {c: _initial_spectrum(TINY.seed, c, 1, TINY.size) for c in (4, 7, 9)}
    together = torch.cat([start[4], start[9], start[7]]).requires_grad_(True)
    assert torch.equal(_initial_spectrum(TINY.seed, 9, 1, TINY.size), start[9])
    prepared = render_copy(mobilenet.model)
    modules = organism.modules(prepared, [LAYER])
    transform = random_transforms(np.random.RandomState(TINY.seed))
    with capture(modules) as outputs:
        prepared(organism.preprocess(transform(spectrum_to_rgb(together, TINY.size))))
    losses = _image_losses(outputs[LAYER], torch.tensor([4, 9, 7]), "channel", 1)
    (gradient,) = torch.autograd.grad(losses[1], [together])
    assert gradient[1].abs().sum() > 0
    assert torch.count_nonzero(gradient[[0, 2]]) == 0


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
                     "uordblks", "fordblks", "keepcost")
    ]  # fmt: skip


def test_a_cpu_render_has_glibc_keep_the_memory_its_steps_free() -> None:
    # Every step frees its activations and allocates them again; glibc as it ships maps a
    # block of a few MB afresh each time and gives the heap's top back, and the next step
    # faults it in again. What the setting changes is checked in glibc's own books, which
    # do not depend on the machine's load (page faults do: 300 to 34,000 measured for one
    # render under pytest, whether or not the setting was made).
    libc = ctypes.CDLL(None)
    if platform.system() != "Linux" or not hasattr(libc, "mallinfo2"):
        pytest.skip("the allocator setting is glibc's (mallinfo2: glibc 2.33 and later)")
    assert reuse_freed_memory() and reuse_freed_memory()  # taken, and again
    libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    libc.mallinfo2.restype = _MallInfo2
    before = libc.mallinfo2()
    block = libc.malloc(8 << 20)  # an activation's size
    taken = libc.mallinfo2()
    libc.free(block)
    freed = libc.mallinfo2()
    assert block and taken.hblks == before.hblks  # from the heap, not a fresh mapping
    assert freed.arena == taken.arena  # kept for the next step, not given back


def test_a_cpu_render_has_the_same_pixels_whatever_torch_s_thread_count(
    mobilenet: organisms.Loaded,
) -> None:
    # The render sets its own thread count (CPU_THREADS) for its duration, and restores
    # the caller's: the pixels, and the batch sizes, do not follow the machine.
    model, organism = mobilenet.model, mobilenet.organism
    renders = []
    for threads in (2, 1, 3):
        torch.set_num_threads(threads)
        renders.append(render_channels(model, organism, LAYER, [4, 9], TINY, batch_size=2))
        assert torch.get_num_threads() == threads
    torch.set_num_threads(1)
    for other in renders[1:]:
        for channel in (4, 9):
            assert np.array_equal(renders[0][channel][0], other[channel][0])
    record = made_on("cpu")
    assert record["device"] == "cpu" and record["threads"] == 1
    assert record["cpu"] == torch.backends.cpu.get_cpu_capability() and record["torch"]


def test_a_channels_image_is_the_same_alone_or_in_any_batch(mobilenet: organisms.Loaded) -> None:
    # Bit for bit, on any CPU. In float32 the kernels' sums move with the batch's shape by
    # a last bit, which the steps grow into pixel levels by a count that depends on the CPU
    # (43 of 3,072 values one level off on an AVX-512 Xeon). In float64, with PyTorch's own
    # kernels, that last bit is a 10^-16 that no step grows to half a level, so what is left
    # to differ is the render's own doing: which start, transforms and loss an image gets.
    organism = mobilenet.organism
    model = copy.deepcopy(mobilenet.model).double()
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        with torch.backends.mkldnn.flags(enabled=False):
            together = render_channels(model, organism, LAYER, [4, 9, 7], TINY, batch_size=3)
            alone = render_channels(model, organism, LAYER, [9], TINY)
            other_batch = render_channels(model, organism, LAYER, [7, 4], TINY, batch_size=2)
    finally:
        torch.set_default_dtype(default)

    np.testing.assert_array_equal(together[9][0], alone[9][0])
    np.testing.assert_array_equal(together[7][0], other_batch[7][0])
    np.testing.assert_array_equal(together[4][0], other_batch[4][0])
    assert not np.array_equal(together[4][0], together[7][0])


def test_a_batched_image_stays_close_to_the_lone_one_with_default_kernels(
    mobilenet: organisms.Loaded,
) -> None:
    model, organism = mobilenet.model, mobilenet.organism

    together = render_channels(model, organism, LAYER, [4, 9, 7], TINY, batch_size=3)
    alone = render_channels(model, organism, LAYER, [9], TINY)

    difference = np.abs(together[9][0].astype(int) - alone[9][0].astype(int))
    assert difference.mean() < 1.0
    assert difference.max() <= 8


def test_the_same_parameters_give_identical_images(mobilenet: organisms.Loaded) -> None:
    model, organism = mobilenet.model, mobilenet.organism

    first = render_channels(model, organism, LAYER, [3, 8], TINY)
    second = render_channels(model, organism, LAYER, [3, 8], TINY)
    reseeded = render_channels(
        model, organism, LAYER, [3, 8], FeatureVisParams(steps=8, size=32, seed=1)
    )

    np.testing.assert_array_equal(first[3][0], second[3][0])
    np.testing.assert_array_equal(first[8][0], second[8][0])
    assert not np.array_equal(first[3][0], reseeded[3][0])


def test_it_leaves_the_model_as_it_was_given() -> None:
    organism = organisms.get("inceptionv1")
    model = organism.architecture().train()  # random weights, training mode, grads on
    before = {k: v.clone() for k, v in model.state_dict().items()}

    images = render_channels(
        model, organism, "mixed3a", [0, 255], FeatureVisParams(steps=4, size=32)
    )

    assert images[255][0].shape == (32, 32, 3)
    assert all(m.training for m in model.modules())
    assert all(p.requires_grad and p.grad is None for p in model.parameters())
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key
    assert all_hooks(model) == 0


def test_it_removes_every_hook_after_a_render(mobilenet: organisms.Loaded) -> None:
    render_channels(
        mobilenet.model, mobilenet.organism, LAYER, [0], FeatureVisParams(steps=2, size=32)
    )

    assert all_hooks(mobilenet.model) == 0


def test_it_removes_every_hook_when_a_render_fails(mobilenet: organisms.Loaded) -> None:
    def interrupt(done: int, total: int) -> None:
        raise RuntimeError("worker shutting down")

    with pytest.raises(RuntimeError, match="shutting down"):
        render_channels(
            mobilenet.model, mobilenet.organism, LAYER, [0, 1], TINY, progress=interrupt
        )
    with pytest.raises(ValueError):  # found after the first forward pass, hooks in place
        render_channels(mobilenet.model, mobilenet.organism, LAYER, [10_000], TINY)

    assert all_hooks(mobilenet.model) == 0


def test_it_reports_progress_after_each_batch(mobilenet: organisms.Loaded) -> None:
    calls: list[tuple[int, int]] = []

    render_channels(
        mobilenet.model,
        mobilenet.organism,
        LAYER,
        [0, 1, 2, 3, 4],
        FeatureVisParams(steps=2, size=32),
        batch_size=2,
        progress=lambda done, total: calls.append((done, total)),
    )

    assert calls == [(2, 5), (4, 5), (5, 5)]


def test_it_optimizes_at_most_a_few_images_together_on_the_cpu(
    mobilenet: organisms.Loaded,
) -> None:
    calls: list[tuple[int, int]] = []
    chunk = cpu_batch_images()
    channels = list(range(chunk + 1))

    render_channels(
        mobilenet.model,
        mobilenet.organism,
        LAYER,
        channels,
        FeatureVisParams(steps=1, size=32),
        batch_size=32,
        progress=lambda done, total: calls.append((done, total)),
    )

    n = len(channels)
    assert chunk == 4  # one thread: see the fixture
    assert calls == [(chunk, n), (n, n)]


def layer_outputs(
    organism: organisms.Organism, model: nn.Module, x: torch.Tensor
) -> dict[str, torch.Tensor]:
    with torch.no_grad(), capture(organism.modules(model)) as outputs:
        model(x)
    return dict(outputs)


def randomize_batchnorm(model: nn.Module) -> nn.Module:
    # Fresh BatchNorms are identities in eval mode; folding them would prove nothing.
    generator = torch.Generator().manual_seed(0)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            for tensor, low, high in [
                (module.running_mean, -1.0, 1.0),
                (module.running_var, 0.5, 2.0),
                (module.weight.data, 0.5, 1.5),
                (module.bias.data, -1.0, 1.0),
            ]:
                tensor.copy_(torch.rand(tensor.shape, generator=generator) * (high - low) + low)
    return model.eval()


def assert_close_to_scale(actual: torch.Tensor, expected: torch.Tensor) -> None:
    # Folding reorders float32 arithmetic: errors scale with the activations' magnitude.
    scale = float(expected.abs().max())
    torch.testing.assert_close(actual, expected, rtol=1e-4, atol=1e-5 * scale)


def batchnorms(model: nn.Module) -> int:
    return sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())


@pytest.mark.parametrize("channels_last", [False, True])
def test_its_render_copy_folds_batchnorm_and_keeps_mobilenets_activations(
    mobilenet: organisms.Loaded, channels_last: bool
) -> None:
    organism, model = mobilenet.organism, mobilenet.model
    x = organism.preprocess(torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(1)))

    prepared = render_copy(model, cpu=channels_last)
    seen = x.contiguous(memory_format=torch.channels_last) if channels_last else x

    assert batchnorms(model) == 52 and batchnorms(prepared) == 0
    expected, actual = layer_outputs(organism, model, x), layer_outputs(organism, prepared, seen)
    for name in expected:
        assert_close_to_scale(actual[name], expected[name])


def test_its_render_copy_for_the_cpu_gives_the_models_input_gradients(
    mobilenet: organisms.Loaded,
) -> None:
    organism, model = mobilenet.organism, mobilenet.model
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    prepared = render_copy(model, cpu=True)

    def input_gradient(net: nn.Module, layout: torch.memory_format) -> torch.Tensor:
        image = x.clone().requires_grad_(True)
        with capture(organism.modules(net, [LAYER])) as outputs:
            net(organism.preprocess(image).contiguous(memory_format=layout))
        (gradient,) = torch.autograd.grad(outputs[LAYER][:, 3].mean(), [image])
        return gradient

    expected = input_gradient(model, torch.contiguous_format)
    actual = input_gradient(prepared, torch.channels_last)

    if torch.backends.mkldnn.is_available():
        assert any(isinstance(m, _OneDnnPointwise) for m in prepared.modules())
    assert expected.abs().max() > 0
    assert_close_to_scale(actual, expected)


def test_its_render_copy_s_relu6_copies_nothing_and_gives_relu6_s_numbers(
    mobilenet: organisms.Loaded,
) -> None:
    prepared = render_copy(mobilenet.model, cpu=True)
    relus = [m for m in prepared.modules() if isinstance(m, nn.ReLU6)]
    assert len(relus) == 35 and all(type(m) is _InPlaceReLU6 for m in relus)

    # Both sides of each bound, and the bounds themselves, where the gradient stops.
    x = torch.tensor([-2.0, -0.0, 0.0, 1e-7, 3.0, 6.0 - 1e-6, 6.0, 6.5, 100.0]).repeat(4, 1)

    def relu6(module: nn.Module) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
        leaf = x.clone().requires_grad_(True)
        with profile() as run:
            out = module(leaf * 1)  # in place on a tensor that autograd tracks
        (gradient,) = torch.autograd.grad((out * torch.arange(1.0, 10.0)).sum(), [leaf])
        return out.detach(), gradient, [e.name for e in run.events()]

    expected, expected_gradient, plain_ops = relu6(nn.ReLU6(inplace=True))
    actual, gradient, ops = relu6(_InPlaceReLU6(inplace=True))

    assert torch.equal(actual, expected) and torch.equal(gradient, expected_gradient)
    assert gradient[0].tolist() == [0, 0, 0, 4, 5, 6, 0, 0, 0]
    assert "aten::clone" in plain_ops and "aten::clone" not in ops


def test_its_render_copy_folds_resnets_named_batchnorms_too() -> None:
    organism = organisms.get("resnet50")
    model = randomize_batchnorm(organism.architecture())
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(2))

    prepared = render_copy(model)

    assert batchnorms(prepared) == 0
    expected, actual = layer_outputs(organism, model, x), layer_outputs(organism, prepared, x)
    for name in expected:
        assert_close_to_scale(actual[name], expected[name])


def test_its_render_copy_leaves_the_callers_model_untouched() -> None:
    model = randomize_batchnorm(organisms.get("mobilenet_v2").architecture()).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    modules = [(name, type(m), m.training) for name, m in model.named_modules()]

    prepared = render_copy(model, keep=["features.1.conv.2"], cpu=True)

    assert [(name, type(m), m.training) for name, m in model.named_modules()] == modules
    assert all(p.requires_grad and p.is_contiguous() for p in model.parameters())
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key
    assert not any(m.training for m in prepared.modules())
    assert not any(p.requires_grad for p in prepared.parameters())
    # A layer asked to be kept keeps its own output: that BatchNorm alone stays.
    assert batchnorms(prepared) == 1
    assert isinstance(prepared.get_submodule("features.1.conv.2"), nn.BatchNorm2d)


def test_its_png_bytes_decode_with_pil(mobilenet: organisms.Loaded) -> None:
    image = render_channels(mobilenet.model, mobilenet.organism, LAYER, [0], TINY)[0][0]

    decoded = Image.open(io.BytesIO(to_png(image)))

    assert decoded.format == "PNG"
    np.testing.assert_array_equal(np.asarray(decoded.convert("RGB")), image)


@pytest.mark.parametrize(
    ("layer", "channels", "params", "options", "message"),
    [
        ("features_6", [0], FeatureVisParams(objective="dream"), {}, "unknown objective"),
        ("features_6", [0], FeatureVisParams(steps=0), {}, "steps must be at least 1"),
        ("features_6", [0], FeatureVisParams(size=4), {}, "size must be at least"),
        ("features_6", [0], FeatureVisParams(steps=4, pre_relu_steps=5), {}, "0 to steps"),
        ("features_6", [32], TINY, {}, "channel 32 is out of range .* 0 to 31"),
        ("features_6", [-1], TINY, {}, "channel -1 is out of range"),
        ("features_99", [0], TINY, {}, "no layer 'features_99'"),
        ("features_6", [0], TINY, {"batch_size": 0}, "batch_size must be at least 1"),
        ("features_6", [0], TINY, {"device": "meta"}, "the model is on cpu"),
    ],
)
def test_it_rejects_bad_inputs_with_a_message(
    mobilenet: organisms.Loaded,
    layer: str,
    channels: list[int],
    params: FeatureVisParams,
    options: dict[str, object],
    message: str,
) -> None:
    with pytest.raises(ValueError, match=message):
        render_channels(mobilenet.model, mobilenet.organism, layer, channels, params, **options)


def test_it_rejects_an_image_that_is_not_rgb_uint8() -> None:
    with pytest.raises(ValueError, match="HxWx3 uint8"):
        to_png(np.zeros((8, 8), dtype=np.uint8))


lucent_on_cpu = pytest.mark.skipif(
    torch.cuda.is_available(), reason="lucent puts its tensors on the GPU when there is one"
)


@lucent_on_cpu
def test_its_transforms_are_lucents_standard_transforms() -> None:
    from lucent.optvis import transform

    image = torch.rand(2, 3, 40, 40)
    ours = random_transforms(np.random.RandomState(5))
    np.random.seed(5)
    theirs = transform.compose(transform.standard_transforms)

    for _ in range(4):
        torch.testing.assert_close(ours(image), theirs(image), rtol=0, atol=0)


@lucent_on_cpu
def test_its_parameterization_is_lucents_fft_image_with_decorrelated_colour() -> None:
    from lucent.optvis import param

    params, image_f = param.image(36, batch=2)

    ours = spectrum_to_rgb(params[0].detach(), 36)

    torch.testing.assert_close(ours, image_f().detach(), rtol=0, atol=0)


def test_importing_the_renderer_prints_no_warning() -> None:
    """kornia, as lucent pins it, warned of torch.jit.script at every worker's start."""
    imported = subprocess.run(
        [sys.executable, "-W", "error", "-c", "import render.featurevis"],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert imported.returncode == 0, imported.stderr
