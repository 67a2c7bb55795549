"""Tiles and grids: modes, shapes, shared vs per-tile scales, captions, colour bar, the tile cap, no matplotlib."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from nnsee.render import (
    MAX_GRID_TILES,
    NAN_RGB,
    TooManyTilesError,
    centre_rgb,
    colorbar,
    grid,
    image_tile,
    signed_lut,
    weight_tile,
    weight_tiles,
)


@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 25, 25), (3, 32, 32), (1, 5, 9), (3, 7, 3), (8, 8)])
def test_weight_tile_shapes(shape: tuple[int, ...]) -> None:
    w = np.random.default_rng(0).normal(size=shape)
    img = weight_tile(w, 1.0, upscale=3)
    assert img.mode == "RGB"
    assert img.size == (shape[-1] * 3, shape[-2] * 3)


def test_weight_tile_nearest_upscale_keeps_nan_marker_and_zero_centre() -> None:
    w = np.zeros((1, 4, 4))
    w[0, 1, 2] = np.nan
    a = np.asarray(weight_tile(w, 0.0, upscale=4))
    assert tuple(a[5, 9]) == NAN_RGB and tuple(a[4:8, 8:12].reshape(-1, 3)[-1]) == NAN_RGB
    assert tuple(a[0, 0]) == centre_rgb()
    assert (np.all(a == NAN_RGB, axis=-1)).sum() == 16


@pytest.mark.parametrize(("shape", "mode"), [((1, 8, 8), "L"), ((28, 28), "L"), ((3, 32, 32), "RGB")])
def test_image_tile_keeps_channels(shape: tuple[int, ...], mode: str) -> None:
    x = np.random.default_rng(0).random(shape)
    img = image_tile(x, upscale=2)
    assert img.mode == mode
    assert img.size == (shape[-1] * 2, shape[-2] * 2)


def test_bad_shapes_raise() -> None:
    with pytest.raises(ValueError, match="C = 1 or 3"):
        weight_tile(np.zeros((2, 4, 4)), 1.0)
    with pytest.raises(ValueError, match="upscale"):
        image_tile(np.zeros((1, 4, 4)), upscale=0)


def test_shared_vs_per_tile_scales() -> None:
    w = np.ones((3, 1, 4, 4))
    w[1] *= 10.0
    w[2] = 0.0
    tiles, scales = weight_tiles(w, shared=True, upscale=1)
    assert scales == [10.0, 10.0, 10.0]
    # shared: the small tile is pale, not saturated; the big one saturates
    assert tuple(np.asarray(tiles[1])[0, 0]) == tuple(signed_lut()[-1])
    assert tuple(np.asarray(tiles[0])[0, 0]) != tuple(signed_lut()[-1])
    assert tuple(np.asarray(tiles[2])[0, 0]) == centre_rgb()
    tiles, scales = weight_tiles(w, shared=False, upscale=1)
    assert scales == [1.0, 10.0, 0.0]
    assert tuple(np.asarray(tiles[0])[0, 0]) == tuple(signed_lut()[-1])
    assert tuple(np.asarray(tiles[2])[0, 0]) == centre_rgb()


def test_weight_tiles_rgb_and_3d_input() -> None:
    tiles, scales = weight_tiles(np.random.default_rng(0).normal(size=(2, 3, 32, 32)), upscale=1)
    assert [t.size for t in tiles] == [(32, 32)] * 2 and len(set(scales)) == 1
    tiles, _ = weight_tiles(np.zeros((2, 25, 25)), upscale=1)  # (N, H, W) means grayscale
    assert tiles[0].size == (25, 25)


def test_grid_layout_captions_title_note() -> None:
    tiles = [image_tile(np.zeros((1, 8, 8)), 2), weight_tile(np.zeros((3, 5, 9)), 1.0, 2)]
    captions = ["<script>", "猫 ☃ \u0000 \ud800 naïve\nnewline"]
    img = grid(tiles, ncols=2, captions=captions, title="title ✓ $x$", note="scale ±1")
    assert img.mode == "RGB"
    assert img.width >= 2 * 18 and img.height > 18
    # grayscale tile pasted as gray, black pixels present
    assert (np.asarray(img) == 0).all(axis=-1).any()


def test_grid_empty_and_single() -> None:
    assert grid([], ncols=4).size[0] >= 1
    img = grid([image_tile(np.ones((1, 3, 3)), 1)], ncols=10, pad=0)
    assert img.size == (3, 3)


def test_grid_caption_count_must_match() -> None:
    with pytest.raises(ValueError, match="captions"):
        grid([image_tile(np.ones((1, 3, 3)), 1)], ncols=1, captions=["a", "b"])


def test_grid_caps_tiles_and_suggests_pages() -> None:
    tiles, _ = weight_tiles(np.zeros((MAX_GRID_TILES + 1, 1, 2, 2)), upscale=1)
    with pytest.raises(TooManyTilesError, match="pages"):
        grid(tiles, ncols=64)
    assert isinstance(TooManyTilesError("x"), ValueError)


def test_4096_units_render_bounded_in_pages() -> None:
    w = np.random.default_rng(0).normal(size=(4096, 1, 8, 8)).astype(np.float32)
    tiles, scales = weight_tiles(w, upscale=1)
    pages = [grid(tiles[i : i + MAX_GRID_TILES], ncols=32) for i in range(0, len(tiles), MAX_GRID_TILES)]
    assert len(pages) == 4 and len(set(scales)) == 1
    assert all(p.width * p.height < 2_000_000 for p in pages)


def test_300_tiles_need_no_matplotlib_figure(monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    from matplotlib import figure

    signed_lut()  # the one-time LUT may use matplotlib's colormap, not a figure

    def boom(*args: object, **kwargs: object) -> None:
        raise AssertionError("a matplotlib Figure was created")

    monkeypatch.setattr(figure.Figure, "__init__", boom)
    w = np.random.default_rng(0).normal(size=(300, 1, 28, 28))
    t0 = time.perf_counter()
    tiles, _ = weight_tiles(w)
    img = grid(tiles, ncols=20, captions=[f"unit {i}" for i in range(300)], title="300 units")
    assert time.perf_counter() - t0 < 5.0  # loose: the point is no figure per tile
    assert img.width >= 20 * 112


def test_colorbar_states_the_scale() -> None:
    cb = colorbar(0.25, width=120, height=10)
    a = np.asarray(cb)
    assert cb.size[0] == 120 and cb.size[1] > 10
    assert tuple(a[0, 0]) == tuple(signed_lut()[0]) and tuple(a[0, -1]) == tuple(signed_lut()[-1])
    assert (a[11:] < 100).all(axis=-1).any()  # labels drawn below the bar
    assert isinstance(colorbar(float("nan")), Image.Image) and isinstance(colorbar(0.0), Image.Image)


def test_mosaic_places_images_row_by_row_with_white_gaps() -> None:
    from nnsee.render import mosaic

    images = np.stack([np.full((1, 2, 3), v, np.float32) for v in (0.0, 0.5, 1.0)])
    sheet = np.asarray(mosaic(images, ncols=2, pad=1))
    assert sheet.shape == (2 * 2 + 1, 2 * 3 + 1)
    assert (sheet[:2, :3] == 0).all() and (sheet[:2, 4:] == 128).all()
    assert (sheet[2, :] == 255).all() and (sheet[3:, :3] == 255).all()  # gap row; the last cell's image is white
    assert (sheet[3:, 4:] == 255).all()  # the missing fourth cell is white
    rgb = mosaic(np.zeros((4, 3, 5, 5), np.float32), ncols=4, upscale=2)
    assert rgb.mode == "RGB" and rgb.size == ((4 * 6 - 1) * 2, 5 * 2)
