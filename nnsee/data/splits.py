"""Stratified, seeded train / validation / test splits.

For each class with ``n`` images (in class order, from one ``np.random.default_rng(seed)``): shuffle its indices,
give ``round(n * test_fraction)`` to test and ``round(n * val_fraction)`` to validation (at least one each when the
fraction is positive), the rest (at least one) to train; then shuffle each split. A class with fewer images than
the splits it should appear in (< 3 for train/val/test) goes to train only, with a warning. Same data and seed,
same splits.
"""

from __future__ import annotations

import warnings

import numpy as np

from nnsee.data.imageset import ImageSet, first_few
from nnsee.errors import DataError


def _check_fractions(val_fraction: float, test_fraction: float) -> None:
    for name, f in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0.0 <= f < 1.0:
            raise DataError(f"{name} must be in [0, 1), got {f}")
    if val_fraction + test_fraction >= 1.0:
        raise DataError(
            f"val_fraction + test_fraction must leave images for training, got {val_fraction} + {test_fraction}"
        )


def _indices(data: ImageSet, fractions: tuple[float, ...], seed: int) -> list[np.ndarray]:
    """Index arrays [train, *one per fraction], stratified by class and shuffled."""
    rng = np.random.default_rng(seed)
    parts: list[list[np.ndarray]] = [[] for _ in range(len(fractions) + 1)]
    wanted = 1 + sum(f > 0 for f in fractions)
    too_few: list[str] = []
    by_class = np.argsort(data.labels, kind="stable")  # each class's indices, ascending, in one O(N log N) sort
    sizes = np.bincount(data.labels, minlength=data.n_classes)
    starts = np.cumsum(sizes) - sizes
    for c in range(data.n_classes):
        idx = rng.permutation(by_class[starts[c] : starts[c] + sizes[c]])
        n = len(idx)
        if n == 0:
            continue
        if n < wanted:
            too_few.append(f"{first_few([data.class_names[c]])} ({n})")
            parts[0].append(idx)
            continue
        counts = [max(1, int(round(n * f))) if f > 0 else 0 for f in fractions]
        while sum(counts) > n - 1:  # keep at least one for training: trim the largest held-out part
            counts[int(np.argmax(counts))] -= 1
        start = 0
        for i, k in enumerate(counts, start=1):
            parts[i].append(idx[start : start + k])
            start += k
        parts[0].append(idx[start:])
    if too_few:
        warnings.warn(
            f"{data.source or 'data'}: classes with fewer than {wanted} images go to training only and are missing "
            f"from validation/test ({len(too_few):,} classes): {first_few(too_few, quote=False)}",
            stacklevel=3,
        )
    return [rng.permutation(np.concatenate(p)) if p else np.zeros(0, np.int64) for p in parts]


def _sub(data: ImageSet, index: np.ndarray) -> ImageSet:
    out = data.subset(index)
    out.skipped = data.skipped
    return out


def split(
    data: ImageSet, val_fraction: float = 0.1, test_fraction: float = 0.1, seed: int = 0
) -> tuple[ImageSet, ImageSet, ImageSet]:
    """(train, val, test) of ``data``, stratified by class and shuffled by ``seed`` (rule in the module docstring)."""
    _check_fractions(val_fraction, test_fraction)
    train, val, test = _indices(data, (val_fraction, test_fraction), seed)
    return _sub(data, train), _sub(data, val), _sub(data, test)


def split_train_val(train: ImageSet, val_fraction: float = 0.1, seed: int = 0) -> tuple[ImageSet, ImageSet]:
    """(train, val) of ``train`` for sets that keep their official test split; same rule as ``split``."""
    _check_fractions(val_fraction, 0.0)
    tr, val = _indices(train, (val_fraction,), seed)
    return _sub(train, tr), _sub(train, val)
