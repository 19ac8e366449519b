from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from render import organisms
from render.examples import Field, SweepResult, crop_box, load_image, receptive_fields, sweep
from render.hooks import capture
from render.organisms import LayerDecl, Organism

PHOTOS = Path(__file__).resolve().parents[2] / "demo" / "photos"
# A mix of ImageNet photos, scientific images and wallpapers.
PHOTO_NAMES = [f"{n:04d}.jpg" for n in (21, 22, 23, 33, 45, 104, 105, 113)]
GRID = 7  # the toy's cells: a 7 x 7 grid of 32 px squares over the 224 px crop


# --- a toy organism whose activations are known exactly -------------------------------


class Cells(nn.Module):
    """Each channel's activation at (row, col) is the value of the crop's 32 px cell."""

    def __init__(self) -> None:
        super().__init__()
        self.pool = nn.MaxPool2d(32)
        self.whole = nn.AdaptiveMaxPool2d(1)
        self.flatten = nn.Flatten()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.flatten(self.whole(self.pool(x)))


TOY = Organism(
    slug="toy",
    title="Toy",
    description="Max-pools 32 px cells: activations are the pixel values, known in advance.",
    architecture=Cells,
    layers=(LayerDecl("cells", "c", "pool"), LayerDecl("head", "h", "flatten")),
    # Back to integers (exact in float32), centred so that bottom examples are negative.
    preprocess=lambda x: torch.round(x * 255) - 128,
    weights_url="",
    weights_filename="",
)


def toy_cells(count: int) -> np.ndarray:
    """[N, 3, 7, 7] integer cell values; few distinct values so ties within an image are
    common, and a range that widens image after image so that histograms must re-bin as
    they go. Images 7 and 8 are the same: a tie between images on every channel."""
    rng = np.random.default_rng(0)
    cells = np.stack(
        [rng.integers(-2 * (i + 1), 2 * (i + 1) + 1, size=(3, GRID, GRID)) for i in range(count)]
    )
    cells[8] = cells[7]
    return cells


def write_toy_image(path: Path, cells: np.ndarray) -> None:
    # 256 px images need no resize; the 224 px centre crop starts at 16 px. The border
    # outside the crop holds the highest value, which the crop must cut away.
    pixels = np.full((256, 256, 3), 255, dtype=np.uint8)
    crop = np.kron(cells + 128, np.ones((32, 32), dtype=np.int64)).transpose(1, 2, 0)
    pixels[16:240, 16:240] = crop.astype(np.uint8)
    Image.fromarray(pixels).save(path)


@pytest.fixture(scope="module")
def toy_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    folder = tmp_path_factory.mktemp("toy")
    cells = toy_cells(10)
    for i, image in enumerate(cells):
        write_toy_image(folder / f"{i:02d}.png", image)
    return folder, cells


def expected_ranking(scores: np.ndarray, k: int, descending: bool) -> np.ndarray:
    """[N, C] scores -> [C, k] image indices, ties to the earlier image."""
    order = np.argsort(-scores if descending else scores, axis=0, kind="stable")
    return order[:k].T


def test_it_finds_exactly_the_top_and_bottom_images_and_positions_of_a_known_model(
    toy_dir: tuple[Path, np.ndarray],
) -> None:
    folder, cells = toy_dir
    model = Cells()
    result = sweep(model, TOY, folder, k=4, bins=7, batch_size=3)

    assert result.images == [f"{i:02d}.png" for i in range(10)]
    layer = result.layers["cells"]
    assert layer.grid == (GRID, GRID)
    flat = cells.reshape(10, 3, -1)
    for name, scores, descending, index, value, pos in [
        ("top", flat.max(2), True, layer.top_index, layer.top_value, layer.top_pos),
        ("bottom", flat.min(2), False, layer.bottom_index, layer.bottom_value, layer.bottom_pos),
    ]:
        expected = expected_ranking(scores, 4, descending)
        np.testing.assert_array_equal(index, expected, err_msg=name)
        np.testing.assert_array_equal(value, np.take_along_axis(scores.T, expected, 1))
        # The first cell in row-major order that holds the extreme.
        arg = flat.argmax(2) if descending else flat.argmin(2)
        first = np.take_along_axis(arg.T, expected, 1)
        np.testing.assert_array_equal(pos, np.stack([first // GRID, first % GRID], -1))


def test_it_handles_a_layer_without_a_grid_as_one_position(
    toy_dir: tuple[Path, np.ndarray],
) -> None:
    folder, cells = toy_dir
    result = sweep(Cells(), TOY, folder, layers=["h"], k=3, batch_size=4)

    head = result.layers["head"]
    assert head.grid == (1, 1)
    scores = cells.reshape(10, 3, -1).max(2)
    np.testing.assert_array_equal(head.top_index, expected_ranking(scores, 3, True))
    np.testing.assert_array_equal(head.top_pos, np.zeros((3, 3, 2)))


def test_its_histograms_are_exact_and_use_power_of_two_bins(
    toy_dir: tuple[Path, np.ndarray],
) -> None:
    folder, cells = toy_dir
    # Batches of 3: the range grows with every batch, so the bins merge as they go.
    result = sweep(Cells(), TOY, folder, layers=["cells"], bins=7, batch_size=3)

    layer = result.layers["cells"]
    assert layer.hist_counts.shape == (3, 7)
    assert layer.hist_edges.shape == (3, 8)
    for channel in range(3):
        values = cells[:, channel].ravel()
        edges = layer.hist_edges[channel]
        assert edges[0] <= values.min() and values.max() < edges[-1]
        widths = np.diff(edges)
        assert np.all(widths == widths[0]) and np.log2(widths[0]).is_integer()
        # Bins are [a, b); numpy's are too, but for its last one, which holds no value here.
        counts, _ = np.histogram(values, bins=edges)
        np.testing.assert_array_equal(layer.hist_counts[channel], counts)


def test_its_results_do_not_depend_on_the_batch_size_or_the_workers(
    toy_dir: tuple[Path, np.ndarray],
) -> None:
    folder, _ = toy_dir
    one = sweep(Cells(), TOY, folder, k=5, bins=9, batch_size=1)
    others = [
        sweep(Cells(), TOY, folder, k=5, bins=9, batch_size=4),
        sweep(Cells(), TOY, folder, k=5, bins=9, batch_size=32),
        sweep(Cells(), TOY, folder, k=5, bins=9, batch_size=3, num_workers=2),
    ]
    for other in others:
        for name, layer in one.layers.items():
            for field in ("top_index", "top_value", "top_pos", "bottom_index", "bottom_pos"):
                np.testing.assert_array_equal(
                    getattr(other.layers[name], field), getattr(layer, field)
                )
            np.testing.assert_array_equal(other.layers[name].hist_counts, layer.hist_counts)
            np.testing.assert_array_equal(other.layers[name].hist_edges, layer.hist_edges)


def test_it_keeps_every_image_when_k_exceeds_their_number(
    toy_dir: tuple[Path, np.ndarray],
) -> None:
    folder, _ = toy_dir
    result = sweep(Cells(), TOY, folder, k=16, batch_size=4)

    layer = result.layers["cells"]
    assert layer.top_index.shape == (3, 10)
    assert layer.bottom_pos.shape == (3, 10, 2)
    for channel in range(3):
        assert sorted(layer.top_index[channel]) == list(range(10))


def test_it_skips_and_reports_unreadable_files(
    tmp_path: Path, toy_dir: tuple[Path, np.ndarray]
) -> None:
    folder, cells = toy_dir
    for i in range(4):
        shutil.copy(folder / f"{i:02d}.png", tmp_path / f"{i:02d}.png")
    (tmp_path / "01b.jpg").write_bytes(b"not a jpeg at all")
    (tmp_path / "02b.png").write_bytes(b"")
    truncated = (folder / "04.png").read_bytes()
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "cut.PNG").write_bytes(truncated[: len(truncated) // 2])
    (tmp_path / "notes.txt").write_text("not an image, not even looked at")

    result = sweep(Cells(), TOY, tmp_path, k=2, batch_size=2)

    assert result.skipped == ["01b.jpg", "02b.png", "sub/cut.PNG"]
    assert result.images == ["00.png", "01.png", "02.png", "03.png"]
    # Indices point into the images that were read, not into the folder listing.
    scores = cells[:4].reshape(4, 3, -1).max(2)
    np.testing.assert_array_equal(
        result.layers["cells"].top_index, expected_ranking(scores, 2, True)
    )


def test_it_refuses_a_folder_without_a_readable_image(tmp_path: Path) -> None:
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8 nothing")
    with pytest.raises(ValueError, match="no readable image"):
        sweep(Cells(), TOY, tmp_path)


def test_it_refuses_activations_that_are_not_numbers(toy_dir: tuple[Path, np.ndarray]) -> None:
    broken = dataclasses.replace(TOY, preprocess=lambda x: x * float("nan"))
    model = Cells()
    with pytest.raises(ValueError, match="NaN"):
        sweep(model, broken, toy_dir[0])
    assert all(not m._forward_hooks for m in model.modules())


def test_it_removes_every_hook_and_restores_the_mode_even_on_error(
    toy_dir: tuple[Path, np.ndarray],
) -> None:
    folder, _ = toy_dir
    model = Cells().train()
    seen: list[tuple[int, int]] = []

    sweep(model, TOY, folder, batch_size=4, progress=lambda done, total: seen.append((done, total)))
    assert seen == [(4, 10), (8, 10), (10, 10)]
    assert model.training

    def fail(done: int, total: int) -> None:
        raise RuntimeError("stop")

    with pytest.raises(RuntimeError, match="stop"):
        sweep(model, TOY, folder, batch_size=4, progress=fail)
    assert all(not m._forward_hooks for m in model.modules())
    assert model.training


def test_it_prints_nothing(toy_dir: tuple[Path, np.ndarray], capsys: pytest.CaptureFixture) -> None:
    sweep(Cells(), TOY, toy_dir[0], batch_size=4)
    assert capsys.readouterr() == ("", "")


def test_a_channel_summary_is_json_and_agrees_with_the_arrays(
    toy_dir: tuple[Path, np.ndarray],
) -> None:
    result = sweep(Cells(), TOY, toy_dir[0], k=3, bins=5, batch_size=4)

    summary = json.loads(json.dumps(result.channel("cells", 2)))
    layer = result.layers["cells"]
    assert summary["grid"] == [GRID, GRID] and summary["images"] == 10
    assert [e["image"] for e in summary["top"]] == [result.images[i] for i in layer.top_index[2]]
    assert [e["value"] for e in summary["bottom"]] == layer.bottom_value[2].tolist()
    assert summary["top"][0]["pos"] == layer.top_pos[2, 0].tolist()
    assert sum(summary["histogram"]["counts"]) == 10 * GRID * GRID
    assert len(summary["histogram"]["edges"]) == 6
    with pytest.raises(IndexError):
        result.channel("cells", 3)


def test_each_example_carries_its_units_receptive_field_measured_from_the_model(
    toy_dir: tuple[Path, np.ndarray],
) -> None:
    """The toy's cells max-pool 32 px squares: a unit sees exactly its square."""
    assert receptive_fields(Cells(), TOY) == {"cells": Field(0.0, 0.0, 32, 32, 32.0, 32.0)}
    result = sweep(Cells(), TOY, toy_dir[0], k=3, bins=5, batch_size=4)

    for entry in result.channel("cells", 1)["top"]:
        row, col = entry["pos"]
        square = [32 * col, 32 * row, 32 * col + 32, 32 * row + 32]
        assert entry["field"] == square and entry["box"] == square
    assert "field" not in result.channel("head", 1)["top"][0]  # no grid: the whole image


def test_a_crop_holds_the_receptive_field_centred_and_inside_the_image() -> None:
    small = Field(top=-1.0, left=-1.0, height=3, width=3, stride_y=2.0, stride_x=2.0)
    wide = Field(top=-69.0, left=-69.0, height=139, width=139, stride_y=16.0, stride_x=16.0)

    assert crop_box((50, 50), (112, 112), 224, field=small) == (84, 84, 116, 116)  # 32 px
    assert crop_box((7, 7), (14, 14), 224, field=wide) == (43, 43, 182, 182)
    assert crop_box((0, 13), (14, 14), 224, field=wide) == (85, 0, 224, 139)  # shifted in
    huge = Field(top=-300.0, left=-300.0, height=700, width=700, stride_y=32.0, stride_x=32.0)
    assert crop_box((3, 3), (7, 7), 224, field=huge) == (0, 0, 224, 224)


def test_mobilenets_receptive_fields_grow_as_its_convolutions_say(
    mobilenet: organisms.Loaded,
) -> None:
    fields = receptive_fields(mobilenet.model, mobilenet.organism, ["f0", "f1", "f3"])

    # features_0: a 3x3 convolution at stride 2; features_1 adds a 3x3 depthwise one (5 px);
    # features_3: 19 px at stride 4.
    assert fields["features_0"] == Field(-1.0, -1.0, 3, 3, 2.0, 2.0)
    assert (fields["features_1"].height, fields["features_1"].stride_y) == (7, 2.0)
    assert (fields["features_3"].height, fields["features_3"].stride_y) == (19, 4.0)


def test_a_crop_box_surrounds_its_cell_and_stays_inside_the_image() -> None:
    assert crop_box((3, 3), (GRID, GRID), 224) == (80, 80, 144, 144)
    assert crop_box((0, 0), (GRID, GRID), 224) == (0, 0, 64, 64)
    assert crop_box((6, 5), (GRID, GRID), 224) == (144, 160, 208, 224)
    # Fine grids still show a quarter of the image around the position.
    assert crop_box((56, 56), (112, 112), 224) == (85, 85, 141, 141)
    assert crop_box((0, 0), (1, 1), 224, side=300) == (0, 0, 224, 224)


# --- MobileNetV2 with its real weights on real photos ---------------------------------


@pytest.fixture(scope="module")
def mobilenet() -> organisms.Loaded:
    organism = organisms.get("mobilenet_v2")
    weights = organisms.find_weights(organism, Path("/nonexistent"))
    assert weights is not None, "MobileNetV2 weights package missing"
    return organisms.load(organism, weights)


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("photos")
    for name in PHOTO_NAMES:
        shutil.copy(PHOTOS / name, folder / name)
    return folder


@pytest.fixture(scope="module")
def brute_force(mobilenet: organisms.Loaded, photos: Path) -> dict[str, np.ndarray]:
    """Every layer's activations, [N, C, H, W], from running the images one by one."""
    organism, model = mobilenet.organism, mobilenet.model
    found: dict[str, list[np.ndarray]] = {}
    with torch.inference_mode(), capture(organism.modules(model)) as outputs:
        for name in PHOTO_NAMES:
            model(organism.preprocess(load_image(photos / name, organism.input_size)[None]))
            for layer, output in outputs.items():
                found.setdefault(layer, []).append(output[0].numpy().copy())
    return {layer: np.stack(maps) for layer, maps in found.items()}


@pytest.fixture(scope="module")
def mobilenet_sweep(mobilenet: organisms.Loaded, photos: Path) -> SweepResult:
    # Batches of 3, 3 and 2: the top-k are merged across batches.
    return sweep(mobilenet.model, mobilenet.organism, photos, k=4, batch_size=3)


def test_it_matches_a_brute_force_computation_on_every_layer_of_mobilenet(
    mobilenet_sweep: SweepResult, brute_force: dict[str, np.ndarray]
) -> None:
    assert mobilenet_sweep.images == PHOTO_NAMES
    assert list(mobilenet_sweep.layers) == [f"features_{i}" for i in range(19)]
    for name, maps in brute_force.items():
        layer = mobilenet_sweep.layers[name]
        count, channels, height, width = maps.shape
        assert layer.grid == (height, width)
        flat = maps.reshape(count, channels, -1)
        for scores, descending, index, value, pos in [
            (flat.max(2), True, layer.top_index, layer.top_value, layer.top_pos),
            (flat.min(2), False, layer.bottom_index, layer.bottom_value, layer.bottom_pos),
        ]:
            # Batched and one-by-one convolutions may differ in the last bits, so compare
            # values with a tolerance: the chosen images really have the k best scores...
            best = np.sort(scores, axis=0)[::-1][:4].T if descending else np.sort(scores, 0)[:4].T
            np.testing.assert_allclose(value, best, rtol=1e-5, atol=1e-5, err_msg=name)
            np.testing.assert_allclose(
                np.take_along_axis(scores.T, index, 1), value, rtol=1e-5, atol=1e-5
            )
            # ...and the extreme is at the reported position of the reported image.
            channel = np.arange(channels)[:, None]
            at = maps[index, channel, pos[..., 0], pos[..., 1]]
            np.testing.assert_allclose(at, value, rtol=1e-5, atol=1e-5, err_msg=name)


def test_its_mobilenet_histograms_count_every_position_of_every_image(
    mobilenet_sweep: SweepResult, brute_force: dict[str, np.ndarray]
) -> None:
    for name, maps in brute_force.items():
        layer = mobilenet_sweep.layers[name]
        count, channels, height, width = maps.shape
        assert layer.hist_counts.shape == (channels, 50)
        assert np.all(layer.hist_counts.sum(1) == count * height * width)
        values = maps.transpose(1, 0, 2, 3).reshape(channels, -1)
        tolerance = 1e-4  # see above: last-bit differences from batching
        assert np.all(layer.hist_edges[:, 0] <= values.min(1) + tolerance)
        assert np.all(values.max(1) < layer.hist_edges[:, -1] + tolerance)
    # Bin by bin, on a layer of each resolution.
    for name in ("features_1", "features_7", "features_18"):
        layer = mobilenet_sweep.layers[name]
        values = brute_force[name].transpose(1, 0, 2, 3).reshape(layer.channels, -1)
        for channel in range(0, layer.channels, 7):
            counts, _ = np.histogram(values[channel], bins=layer.hist_edges[channel])
            moved = np.abs(counts - layer.hist_counts[channel]).sum()
            assert moved <= 2, (name, channel, moved)


def test_its_mobilenet_results_do_not_depend_on_the_batch_size(
    mobilenet: organisms.Loaded, photos: Path, mobilenet_sweep: SweepResult
) -> None:
    whole = sweep(mobilenet.model, mobilenet.organism, photos, k=4, batch_size=8)
    for name, layer in mobilenet_sweep.layers.items():
        other = whole.layers[name]
        np.testing.assert_allclose(other.top_value, layer.top_value, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(other.bottom_value, layer.bottom_value, rtol=1e-5, atol=1e-5)
        np.testing.assert_array_equal(other.hist_edges, layer.hist_edges)
        assert np.abs(other.hist_counts - layer.hist_counts).sum() <= 2 * layer.channels
    assert all(not m._forward_hooks for m in mobilenet.model.modules())
