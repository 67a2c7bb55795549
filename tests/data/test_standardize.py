"""Standardization, checked against independent float64 numpy computations."""

from __future__ import annotations

import json

import numpy as np
import pytest

from nnsee.data import Standardizer
from nnsee.errors import DataError


@pytest.fixture
def images():
    rng = np.random.default_rng(0)
    x = rng.random((20, 1, 4, 5), dtype=np.float32)
    x[:, 0, 0, 0] = 0.25  # a constant pixel
    x[3] = 0.25  # a constant image (keeping that pixel constant)
    return x


def test_image_mode_against_float64(images):
    before = images.copy()
    out = Standardizer("image").fit(images).transform(images)
    np.testing.assert_array_equal(images, before)  # input untouched
    d = 20
    x = images.reshape(20, -1).astype(np.float64)
    c = x - x.mean(axis=1, keepdims=True)
    norm = np.linalg.norm(c, axis=1, keepdims=True)
    ref = np.divide(c * np.sqrt(d), norm, out=np.zeros_like(c), where=norm > 0)
    assert out.dtype == np.float32 and out.shape == images.shape
    np.testing.assert_allclose(out.reshape(20, -1), ref, rtol=1e-5, atol=1e-6)
    norms = np.linalg.norm(out.reshape(20, -1).astype(np.float64), axis=1)
    np.testing.assert_allclose(np.delete(norms, 3), np.sqrt(d), rtol=1e-5)
    np.testing.assert_allclose(out.reshape(20, -1).mean(axis=1), 0.0, atol=1e-6)
    assert np.all(out[3] == 0.0)  # constant image -> zeros, no NaN
    single = Standardizer("image").transform(images[0])
    np.testing.assert_allclose(single, out[0], rtol=1e-6)


def test_pixel_mode_fitted_on_train_only(images):
    train, test = images[:15], images[15:] * 3.0
    s = Standardizer("pixel").fit(train)
    t64 = train.astype(np.float64)
    mu, sd = t64.mean(axis=0), t64.std(axis=0)
    sd = np.where(sd < 1e-8, 1.0, sd)
    assert sd[0, 0, 0] == 1.0  # the constant pixel
    np.testing.assert_allclose(s.transform(test), (test - mu) / sd, rtol=1e-5, atol=1e-5)
    out_train = s.transform(train).astype(np.float64)
    np.testing.assert_allclose(out_train.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(np.delete(out_train.std(axis=0).ravel(), 0), 1.0, rtol=1e-4)
    assert s.n_fit == 15
    np.testing.assert_allclose(s.inverse(s.transform(test)), test, rtol=1e-5, atol=1e-6)


def test_none_and_inverse(images):
    none = Standardizer("none").fit(images)
    np.testing.assert_array_equal(none.transform(images), images)
    s = Standardizer("image")
    out = s.transform(images)
    mean, scale = s.image_stats(images)
    np.testing.assert_allclose(s.inverse(out, mean, scale), images, rtol=1e-5, atol=1e-6)
    shown = s.inverse(out)
    assert shown.min() == 0.0 and shown.max() == 1.0 and np.all(shown[3] == 0.5)


def test_round_trip_dict(images):
    for mode in ("image", "pixel", "none"):
        s = Standardizer(mode).fit(images)
        text = json.dumps(s.to_dict())
        back = Standardizer.from_dict(json.loads(text))
        assert back == s and back.mode == mode
        np.testing.assert_array_equal(back.transform(images), s.transform(images))
    big = np.random.default_rng(1).random((3, 3, 40, 40), dtype=np.float32)  # 4,800 values: base64
    s = Standardizer("pixel").fit(big)
    d = json.loads(json.dumps(s.to_dict()))
    assert "float32_le_base64" in d["mean"] and Standardizer.from_dict(d) == s


def test_pixel_dict_is_small_for_mnist_shape():
    x = np.random.default_rng(0).random((50, 1, 28, 28), dtype=np.float32)
    text = json.dumps(Standardizer("pixel").fit(x).to_dict())
    assert len(text) < 40_000  # two 784-float lists


def test_errors_and_describe(images):
    with pytest.raises(DataError, match="one of image, pixel, none"):
        Standardizer("zscore")
    with pytest.raises(DataError, match="must be fit"):
        Standardizer("pixel").transform(images)
    s = Standardizer("pixel").fit(images)
    with pytest.raises(DataError, match=r"expected images of shape \(1, 4, 5\)"):
        s.transform(np.zeros((2, 3, 4, 5), np.float32))
    with pytest.raises(DataError, match="malformed"):
        Standardizer.from_dict({"modes": "pixel"})
    assert "20 training images" in s.describe() and "image" in Standardizer("image").describe()
