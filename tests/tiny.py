"""Tiny data sets made on the spot, with a known structure the tests can rely on."""

from __future__ import annotations

import numpy as np

from nnsee.data.imageset import ImageSet, Splits


def make_imageset(n_per_class: int = 20, n_classes: int = 3, shape: tuple[int, int, int] = (1, 4, 4),
                  seed: int = 0, scale: float = 1.0) -> ImageSet:
    """Class k lights up pixel block k (plus noise), so a linear model separates the classes."""
    rng = np.random.default_rng(seed)
    c, h, w = shape
    n = n_per_class * n_classes
    images = rng.uniform(0, 0.3, size=(n, c, h, w)).astype(np.float32)
    labels = np.repeat(np.arange(n_classes), n_per_class)
    flat = images.reshape(n, -1)
    block = max(1, flat.shape[1] // n_classes)
    for i, k in enumerate(labels):
        flat[i, k * block : (k + 1) * block] += 0.7
    return ImageSet(images * scale, labels, [f"class {k}" for k in range(n_classes)], source="tiny")


def make_splits(n_per_class: int = 20, n_classes: int = 3, shape: tuple[int, int, int] = (1, 4, 4),
                scale: float = 1.0) -> Splits:
    parts = [make_imageset(n, n_classes, shape, seed, scale) for n, seed in ((n_per_class, 0), (5, 1), (5, 2))]
    return Splits(*parts, spec={"spec": "tiny"})

# Class names that must come out escaped in HTML, JSON, SVG and PNG titles.
HOSTILE_NAMES = ["<script>alert(1)</script>", "quote \" and 'apostrophe'", "amp & <b>bold</b>"]


def banded_npz(path: object, n_per_class: int, side: int, *, step: int = 2, width: int = 2, noise: float = 0.3,
               signal: float = 0.7, seed: int = 0, class_names: list[str] | None = None,
               n_classes: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Write an .npz of ``side``×``side`` images where class k lights rows ``step*k .. step*k+width``; return x, y."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, noise, size=(n_per_class * n_classes, side, side)).astype(np.float32)
    y = np.repeat(np.arange(n_classes), n_per_class)
    for i, k in enumerate(y):
        x[i, step * k : step * k + width] += signal
    extra = {"class_names": np.array(class_names)} if class_names is not None else {}
    np.savez(path, x=x, y=y, **extra)
    return x, y
