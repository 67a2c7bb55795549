import numpy as np
import pytest

from nnsee.data import Standardizer
from nnsee.methods import MethodError, standardization_norms, standardization_views


def test_views_of_one_image_under_each_mode():
    train = np.stack([np.full((1, 2, 2), v, np.float32) for v in (0.0, 0.5, 1.0)])  # mean 0.5, std √(1/6)
    train[:, 0, 0, 0] = [0.0, 0.0, 0.0]  # pixel (0, 0) constant in training: std floored to 1
    image = np.array([[[0.0, 1.0], [0.25, 0.75]]], np.float32)
    views = standardization_views(image, train)
    assert list(views) == ["none", "image", "pixel"]
    np.testing.assert_array_equal(views["none"], image)
    # image mode: mean 0.5, s = sqrt(mean((x − 0.5)²)) = sqrt((0.25 + 0.25 + 0.0625 + 0.0625) / 4) = sqrt(0.15625)
    s = np.sqrt(0.15625)
    np.testing.assert_allclose(views["image"], (image - 0.5) / s, rtol=1e-6)
    std = np.sqrt(1 / 6)
    np.testing.assert_allclose(views["pixel"][0], [[0.0, 0.5 / std], [-0.25 / std, 0.25 / std]], rtol=1e-6)
    fitted = Standardizer("pixel").fit(train)
    np.testing.assert_array_equal(standardization_views(image, fitted)["pixel"], views["pixel"])


def test_norms_are_equal_only_in_image_mode():
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 1, size=(20, 3, 4, 4)).astype(np.float32) * rng.uniform(0.1, 1, size=(20, 1, 1, 1))
    norms = standardization_norms(images, images)
    assert set(norms) == {"none", "image", "pixel"} and all(v.shape == (20,) for v in norms.values())
    np.testing.assert_allclose(norms["image"], np.sqrt(48), rtol=1e-5)
    np.testing.assert_allclose(norms["none"], np.linalg.norm(images.reshape(20, -1), axis=1), rtol=1e-6)
    assert norms["none"].std() > 0.1 and norms["pixel"].std() > 0.1


def test_errors():
    with pytest.raises(MethodError, match=r"one image of shape \(C, H, W\)"):
        standardization_views(np.zeros((2, 1, 2, 2)), np.zeros((2, 1, 2, 2)))
    with pytest.raises(MethodError, match="like the training data"):
        standardization_views(np.zeros((1, 3, 3)), np.zeros((2, 1, 2, 2)))
    with pytest.raises(MethodError, match="Standardizer\\('pixel'\\)"):
        standardization_views(np.zeros((1, 2, 2)), Standardizer("image"))
