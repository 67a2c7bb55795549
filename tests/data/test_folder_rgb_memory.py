"""The folder loader at 224 px RGB on real photos: colour kept, and memory bounded by one float32 copy of the set."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from limited_child import call, run_limited
from photos import PHOTOS, photo_folder

from nnsee.data.folder import load_folder
from nnsee.errors import DataError


def test_rgb_224_photos_load_in_colour(tmp_path: Path) -> None:
    data = load_folder(photo_folder(tmp_path / "p", 2, 256), size=224, grayscale=False)
    assert data.images.shape == (6, 3, 224, 224) and data.images.dtype == np.float32
    assert data.class_names == sorted(PHOTOS)
    spread = np.abs(data.images - data.images.mean(axis=1, keepdims=True)).mean()
    assert spread > 0.02  # real colour, not three equal grey channels


def _extra_peak_mb(tmp_path: Path, target: str, n: int) -> tuple[float, float]:
    """(child's peak above a 3-image call, float32 MB of the images) for ``target`` on 3 * n photos at 3x224x224."""
    big = photo_folder(tmp_path / "big", n, 256, fmt="jpg")
    small = photo_folder(tmp_path / "small", 1, 256, fmt="jpg")
    kw = {"size": 224, "grayscale": False}
    _, base_kb = run_limited([call(target, str(small), **kw)], limit=3 << 30)
    (outcome,), peak_kb = run_limited([call(target, str(big), **kw)], limit=3 << 30)
    assert outcome[1] == "DONE", outcome
    return (peak_kb - base_kb) * 1024 / 1e6, 3 * n * 3 * 224 * 224 * 4 / 1e6


def test_peak_is_one_copy_of_the_images(tmp_path: Path) -> None:
    """300 photos of 3x224x224 are 180.6 MB as float32. The child's peak above a 3-image load must stay under 1.25
    copies + 40 MB (a list of decoded images then np.stack held two copies: ~2x)."""
    extra_mb, data_mb = _extra_peak_mb(tmp_path, "nnsee.data.folder:load_folder", 100)
    print(f"load_folder: extra {extra_mb:.0f} MB for {data_mb:.0f} MB")
    assert extra_mb < 1.25 * data_mb + 40, f"peak {extra_mb:.0f} MB above the base for {data_mb:.0f} MB of images"


def test_over_budget_refused_before_decoding(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import nnsee.data.folder as folder

    monkeypatch.setattr(folder, "MAX_IMAGE_BYTES", 5 * 3 * 224 * 224 * 4)
    root = photo_folder(tmp_path / "p", 2, 64)
    with pytest.raises(DataError, match=r"6 image files at 3x224x224 .* use a smaller --size or at most 5 images"):
        load_folder(root, size=224, grayscale=False)
    assert load_folder(root, size=64, grayscale=False).images.shape == (6, 3, 64, 64)


def test_load_data_holds_one_copy_of_a_folder(tmp_path: Path) -> None:
    """load_data on a folder cuts the splits in place: its peak above a 3-image load stays under 1.25 copies + 40 MB
    (split() copied every image while the decoded folder was alive: ~2x)."""
    extra_mb, data_mb = _extra_peak_mb(tmp_path, "nnsee.data.spec:load_data", 100)
    print(f"load_data: extra {extra_mb:.0f} MB for {data_mb:.0f} MB")
    assert extra_mb < 1.25 * data_mb + 40, f"peak {extra_mb:.0f} MB above the base for {data_mb:.0f} MB of images"


def test_folder_splits_equal_the_copying_split(tmp_path: Path) -> None:
    from nnsee.data.spec import load_data
    from nnsee.data.splits import split

    root = photo_folder(tmp_path / "p", 7, 40)
    got = load_data(str(root), size=32, grayscale=False, seed=5, val_fraction=0.2, test_fraction=0.3)
    want = split(load_folder(root, size=32, grayscale=False), 0.2, 0.3, 5)
    for g, w in zip((got.train, got.val, got.test), want, strict=True):
        np.testing.assert_array_equal(g.images, w.images)
        np.testing.assert_array_equal(g.labels, w.labels)
