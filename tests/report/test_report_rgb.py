"""A report over a small RGB CNN trained on real photos: its tiles are colour images, and the occlusion defaults
scale with the image side."""

from __future__ import annotations

import base64
import io
import re

import numpy as np
import pytest
import torch
from photos import photo_folder
from PIL import Image

from nnsee.data import load_data
from nnsee.methods.attribution.registry import occlusion_window
from nnsee.models import build_model
from nnsee.report.build import build_report
from nnsee.report.sections.cnn_section import occlusion_map_stride
from nnsee.train import TrainConfig, fit


@pytest.fixture(scope="module")
def rgb_report(tmp_path_factory: pytest.TempPathFactory) -> str:
    root = tmp_path_factory.mktemp("rgb")
    splits = load_data(str(photo_folder(root / "photos", 16, 80)), size=64, grayscale=False, seed=0)
    torch.manual_seed(0)
    model = build_model("cnn", splits.shape, 3, channels=[6, 8], kernel=3)
    fit(model, splits, TrainConfig(epochs=1, batch_size=16, lr=0.01), root / "run", progress=False)
    return build_report(root / "run").read_text(encoding="utf-8")


def _tiles(html: str, alt: str) -> list[np.ndarray]:
    found = re.findall(r'<img src="data:image/png;base64,([^"]+)" alt="' + alt, html)
    return [np.asarray(Image.open(io.BytesIO(base64.b64decode(b))).convert("RGB"), dtype=np.int16) for b in found]


def _colourful(a: np.ndarray) -> float:
    """Share of pixels whose channels differ by more than 8 levels (0 for a grey image)."""
    return float((np.ptp(a, axis=-1) > 8).mean())


@pytest.mark.parametrize("alt", ["first-layer filters", "top 9 images of map", "projections of map", "test image",
                                 "examples of", "p\\(true\\) over the image"])
def test_tiles_are_colour(rgb_report: str, alt: str) -> None:
    tiles = _tiles(rgb_report, alt)
    assert tiles, f"no {alt!r} tile in the report"
    assert max(_colourful(t) for t in tiles) > 0.2, f"{alt!r} tiles are grey"


def test_occlusion_over_the_photo_is_darker_where_p_is_low() -> None:
    from nnsee.report.sections.cnn_section import over_photo

    photo = np.full((3, 8, 8), 0.8, np.float32)
    photo[0] = 0.4
    p = np.array([[1.0, 0.0], [1.0, 0.0]], np.float32)
    out = over_photo(photo, p)
    assert out.shape == photo.shape
    np.testing.assert_allclose(out[:, :, 0], photo[:, :, 0], atol=1e-6)  # p = 1 on the left: the photo as loaded
    np.testing.assert_allclose(out[:, :, -1], 0.25 * photo[:, :, -1], atol=1e-6)  # p = 0 on the right: a quarter


def test_page_states_the_display_rule(rgb_report: str) -> None:
    assert "255·(½ + ½·w/s) per channel" in rgb_report
    assert "shown as loaded" in rgb_report


@pytest.mark.parametrize(("side", "window", "stride"), [(28, 4, 2), (64, 8, 4), (96, 12, 6), (224, 32, 16)])
def test_occlusion_defaults_scale_and_tile(side: int, window: int, stride: int) -> None:
    assert occlusion_window((1, 3, side, side)) == (window, stride)


@pytest.mark.parametrize("side", range(8, 300))
def test_occlusion_default_windows_cover_the_image(side: int) -> None:
    """About a seventh of the side; where the side has a divisor near side / 14 the windows tile it exactly."""
    window, stride = occlusion_window((side, side))
    assert window == 2 * stride and abs(window - side / 7) <= max(2, 0.45 * side / 7)
    if any(side % d == 0 for d in range(int(np.ceil(side / 20)), int(side / 10) + 1)):
        assert (side - window) % stride == 0


def test_report_occlusion_has_about_25_positions_a_side() -> None:
    for side in (28, 64, 128, 224):
        window, _ = occlusion_window((side, side))
        positions = (side - window) // occlusion_map_stride((3, side, side)) + 1
        assert 20 <= positions <= 33, (side, positions)
