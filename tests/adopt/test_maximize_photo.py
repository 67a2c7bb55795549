"""activation_max.as_photo: the maximizing image of an RGB model with --normalize imagenet, back in pixels."""

from __future__ import annotations

import numpy as np

from nnsee.data.standardize import parse_normalize
from nnsee.methods.activation_max import activation_maximization, as_photo
from tests.zoo import resnet18


def test_imagenet_normalization_undone_and_clipped() -> None:
    image = np.random.default_rng(0).normal(0, 1.5, (3, 8, 8)).astype(np.float32)
    photo, outside = as_photo(image, parse_normalize("imagenet", 3))
    mean, std = np.array([0.485, 0.456, 0.406])[:, None, None], np.array([0.229, 0.224, 0.225])[:, None, None]
    pixels = image * std + mean  # torchvision's Normalize, inverted by hand
    np.testing.assert_allclose(photo, np.clip(pixels, 0, 1), atol=1e-6)
    assert outside == np.mean((pixels < 0) | (pixels > 1)) and 0 < outside < 1
    same, none_outside = as_photo(np.full((3, 2, 2), 0.5, np.float32), None)
    assert np.all(same == 0.5) and none_outside == 0


def test_maximized_resnet_image_is_a_colour_photo() -> None:
    model = resnet18(n_classes=3, width=8)
    image = activation_maximization(model, ("layer3.1.conv2", 5), (3, 32, 32), steps=5)
    photo, _ = as_photo(image, parse_normalize("imagenet", 3))
    assert photo.shape == (3, 32, 32) and photo.min() >= 0 and photo.max() <= 1
    assert np.abs(photo[0] - photo[2]).max() > 0.01  # the channels differ: colour
