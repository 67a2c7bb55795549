"""The deconvnet projections fetch their top images again: from a streamed set, only those images are read."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nnsee.data import load_data
from nnsee.data.lazy import LazyImages
from nnsee.methods.dataset_views.projections import gather


def test_gather_reads_only_the_asked_images_of_a_streamed_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (60, 1, 8, 8), dtype=np.uint8)
    np.savez(tmp_path / "set.npz", x=x, y=np.arange(60) % 3)
    streamed = load_data(str(tmp_path / "set.npz"), stream=True).train
    in_memory = load_data(str(tmp_path / "set.npz"), stream=False).train
    assert isinstance(streamed.images, LazyImages)
    read: list[int] = []
    original = LazyImages.read

    def counted(self: LazyImages, positions: np.ndarray) -> tuple:
        read.extend(np.asarray(positions).tolist())
        return original(self, positions)

    monkeypatch.setattr(LazyImages, "read", counted)
    index = np.array([[5, 0, 17], [3, 3, 40]])
    got = gather(streamed.images, index)
    np.testing.assert_array_equal(got, in_memory.images[index])
    assert got.shape == (2, 3, 1, 8, 8)
    assert len(read) <= index.size, f"read {len(read)} images for {index.size}"
