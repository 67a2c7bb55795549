"""npz files: layouts, scaling, NaN/inf, unscaled-data warning, no pickle."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from nnsee.data import load_npz
from nnsee.errors import DataError


def write(path, **arrays):
    np.savez(path, **arrays)
    return path


def test_uint8_nhw_scaled(tmp_path):
    x = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3) * 10
    data = load_npz(write(tmp_path / "d.npz", x=x, y=np.array([0, 1])))
    assert data.images.shape == (2, 1, 3, 3) and data.class_names == ["0", "1"]
    np.testing.assert_allclose(data.images[:, 0], x / 255.0, rtol=1e-6)


def test_layouts(tmp_path):
    rng = np.random.default_rng(0)
    nchw = rng.random((4, 3, 5, 6), dtype=np.float32)
    y = np.array([0, 1, 0, 1])
    np.testing.assert_array_equal(load_npz(write(tmp_path / "a.npz", x=nchw, y=y)).images, nchw)
    nhwc = nchw.transpose(0, 2, 3, 1)
    np.testing.assert_array_equal(load_npz(write(tmp_path / "b.npz", x=nhwc, y=y)).images, nchw)
    grey = nchw[:, :1].transpose(0, 2, 3, 1)  # (N, H, W, 1)
    assert load_npz(write(tmp_path / "c.npz", x=grey, y=y)).images.shape == (4, 1, 5, 6)
    with pytest.raises(DataError, match=r"e\.npz: x has shape \(4, 5, 5, 5\)"):
        load_npz(write(tmp_path / "e.npz", x=rng.random((4, 5, 5, 5)), y=y))


def test_nan_and_inf_refused(tmp_path):
    x = np.zeros((3, 4, 4), np.float32)
    x[0, 0, 0], x[1, 1, 1] = np.nan, np.inf
    with pytest.raises(DataError, match=r"bad\.npz: x holds 2 NaN or infinite values"):
        load_npz(write(tmp_path / "bad.npz", x=x, y=np.array([0, 1, 1])))


def test_unscaled_float_warns_and_scaled_does_not(tmp_path):
    y = np.array([0, 1])
    with pytest.warns(UserWarning, match=r"raw\.npz: pixel values reach 255.*divide x by 255"):
        load_npz(write(tmp_path / "raw.npz", x=np.full((2, 3, 3), 255.0), y=y))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_npz(write(tmp_path / "ok.npz", x=np.full((2, 3, 3), 1.0), y=y))


def test_class_names(tmp_path):
    x, y = np.zeros((3, 2, 2), np.uint8), np.array([0, 2, 1])
    data = load_npz(write(tmp_path / "n.npz", x=x, y=y, class_names=np.array(["cat", "dog", "<emu>"])))
    assert data.class_names == ["cat", "dog", "<emu>"]
    with pytest.raises(DataError, match="label 2 but class_names has only 2"):
        load_npz(write(tmp_path / "m.npz", x=x, y=y, class_names=np.array(["cat", "dog"])))


def test_bad_labels_and_missing_arrays(tmp_path):
    x = np.zeros((3, 2, 2), np.uint8)
    with pytest.raises(DataError, match=r"found \['images', 'z'\]"):
        load_npz(write(tmp_path / "k.npz", images=x, z=x))
    with pytest.raises(DataError, match="one label per image"):
        load_npz(write(tmp_path / "l.npz", x=x, y=np.array([0, 1])))
    with pytest.raises(DataError, match="integer class indices"):
        load_npz(write(tmp_path / "f.npz", x=x, y=np.array([0.5, 1, 0])))
    with pytest.raises(DataError, match="negative label"):
        load_npz(write(tmp_path / "g.npz", x=x, y=np.array([0, -1, 0])))
    assert load_npz(write(tmp_path / "h.npz", x=x, y=np.array([0.0, 1.0, 0.0]))).labels.dtype == np.int64


def test_pickle_and_garbage_refused(tmp_path):
    obj = np.array([{"a": 1}, None], dtype=object)
    with pytest.raises(DataError, match=r"p\.npz: cannot read as \.npz without pickle"):
        load_npz(write(tmp_path / "p.npz", x=obj, y=np.array([0, 1])))
    (tmp_path / "junk.npz").write_bytes(b"not a zip at all")
    with pytest.raises(DataError, match=r"junk\.npz"):
        load_npz(tmp_path / "junk.npz")
    with pytest.raises(DataError, match="none.npz: no such file"):
        load_npz(tmp_path / "none.npz")
