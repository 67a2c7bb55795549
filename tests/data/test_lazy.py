"""Streamed data sets equal the in-memory ones exactly: same splits, same pixels, same pixel statistics.

Each format is written by the test (image folders of real photos, IDX plain and .gz, npz stored and deflated, a
fashion-mnist-like named set), loaded with ``stream=False`` (the in-memory loaders, the reference) and
``stream=True``, and compared split by split with ``np.array_equal``.
"""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import numpy as np
import pytest
from photos import photo_folder

from nnsee.data import Standardizer, describe, load_data
from nnsee.data.lazy import LazyImages
from nnsee.errors import DataError


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NNSEE_CACHE", str(tmp_path / "stream-cache"))


def _same(spec: str, **kwargs: object) -> None:
    memory = load_data(spec, stream=False, **kwargs)
    streamed = load_data(spec, stream=True, **kwargs)
    assert streamed.spec == memory.spec
    for part in ("train", "val", "test"):
        a, b = getattr(memory, part), getattr(streamed, part)
        assert b.streamed and not a.streamed
        assert isinstance(b.images, LazyImages) and b.images.shape == a.images.shape
        np.testing.assert_array_equal(b.labels, a.labels)
        np.testing.assert_array_equal(np.asarray(b.images), a.images)
        np.testing.assert_array_equal(b.images[3:7], a.images[3:7])
        np.testing.assert_array_equal(b.images[len(a) - 1], a.images[-1])
    for mode in ("pixel", "image"):
        want, got = Standardizer(mode).fit(memory.train.images), Standardizer(mode).fit(streamed.train.images)
        assert got == want and got.n_fit == want.n_fit


@pytest.mark.parametrize("kwargs", [{"size": 24}, {"size": 20, "grayscale": False},
                                    {"size": 24, "grayscale": False, "resize": "torchvision"}])
def test_folder(tmp_path: Path, kwargs: dict) -> None:
    root = photo_folder(tmp_path / "p", 6, 40, fmt="jpg")
    _same(str(root), seed=3, val_fraction=0.2, test_fraction=0.2, **kwargs)


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("kwargs", [{}, {"size": 8, "grayscale": False}])
def test_idx_folder(tmp_path: Path, h, gz: bool, kwargs: dict) -> None:
    h.tiny_idx_set(tmp_path / "idx", n_train=40, n_test=12, gz=gz)
    _same(str(tmp_path / "idx"), seed=1, **kwargs)


def _npz(path: Path, compress: bool, x: np.ndarray, y: np.ndarray) -> Path:
    (np.savez_compressed if compress else np.savez)(path, x=x, y=y)
    with zipfile.ZipFile(path) as z:
        kinds = {i.compress_type for i in z.infolist()}
    assert kinds == {zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED}
    return path


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("layout", ["nhw", "nhwc", "nchw-float"])
def test_npz(tmp_path: Path, compress: bool, layout: str) -> None:
    rng = np.random.default_rng(0)
    y = np.arange(45) % 3
    x = {"nhw": rng.integers(0, 256, (45, 6, 7), dtype=np.uint8),
         "nhwc": rng.integers(0, 256, (45, 6, 6, 3), dtype=np.uint8),
         "nchw-float": rng.random((45, 3, 5, 5)).astype(">f8")}[layout]
    path = _npz(tmp_path / "d.npz", compress, x, y)
    _same(str(path), seed=2)
    _same(str(path), seed=2, size=4, grayscale=True)


def test_fashion_mnist_like_named_set(tmp_path: Path, h, monkeypatch: pytest.MonkeyPatch) -> None:
    """A named set found in NNSEE_DATA, its files checked against their sha256 (here: of files the test made)."""
    import nnsee.data.named as named

    folder = tmp_path / "data" / "fashion-mnist"
    arrays = h.tiny_idx_set(folder, n_train=50, n_test=20, k=10, gz=True)
    sha = {name: hashlib.sha256(h.idx_bytes(arr)).hexdigest() for name, arr in arrays.items()}
    fake = named.NamedSet("fashion-mnist", named.NAMED_SETS["fashion-mnist"].class_names, sha, ())
    monkeypatch.setitem(named.NAMED_SETS, "fashion-mnist", fake)
    monkeypatch.setenv("NNSEE_DATA", str(tmp_path / "data"))
    _same("fashion-mnist", seed=4, download=False)
    wrong = {**sha, named.TRAIN_IMAGES: "0" * 64}
    monkeypatch.setitem(named.NAMED_SETS, "fashion-mnist", named.NamedSet("fashion-mnist", fake.class_names, wrong, ()))
    for cache in (tmp_path / "stream-cache").iterdir():  # the verified copy would be taken as it is
        cache.unlink()
    with pytest.raises(DataError, match="sha256 of the decompressed content"):
        load_data("fashion-mnist", stream=True, download=False)


def test_auto_streams_past_the_budget_and_describe_reads_nothing(tmp_path: Path, h) -> None:
    h.tiny_idx_set(tmp_path / "idx", n_train=40, n_test=12, gz=False)  # 52 images of 5x5: 5,200 bytes as float32
    assert not load_data(str(tmp_path / "idx"), max_memory=5200).train.streamed
    splits = load_data(str(tmp_path / "idx"), max_memory=5199)
    assert splits.train.streamed
    (tmp_path / "idx" / "t10k-images-idx3-ubyte").write_bytes(b"")  # describe must not read a single image
    info = describe(splits)
    assert info["streamed"] is True and info["pixel_range"] is None and info["n"] == 52


def test_materializing_past_the_budget_is_one_line(tmp_path: Path, h) -> None:
    h.tiny_idx_set(tmp_path / "idx", n_train=40, n_test=12, gz=False)
    splits = load_data(str(tmp_path / "idx"), stream=True, max_memory=1000)
    assert splits.train.images.nbytes == len(splits.train) * 100 == 3700
    with pytest.raises(DataError) as info:
        np.asarray(splits.train.images)
    message = str(info.value)
    assert "\n" not in message and "3.61 KiB" in message and "1,000 bytes" in message and "--max-memory" in message
    assert splits.train.images[:2].shape == (2, 1, 5, 5)  # slices are still read
