"""Splits: stratified (mnist_5k is sorted by class), shuffled, seeded, disjoint, and small classes handled."""

from __future__ import annotations

import numpy as np
import pytest

from nnsee.data import ImageSet, load_digits, split
from nnsee.data.splits import split_train_val
from nnsee.errors import DataError


def tagged(counts):
    """An ImageSet whose pixel 0 holds the image's index, so splits can be traced back."""
    labels = np.repeat(np.arange(len(counts)), counts)
    images = np.zeros((len(labels), 1, 2, 2), np.float32)
    images[:, 0, 0, 0] = np.arange(len(labels))
    return ImageSet(images, labels, [f"c{i}" for i in range(len(counts))], "tagged")


def ids(s):
    return s.images[:, 0, 0, 0].astype(int)


def test_digits_every_class_in_every_split():
    train, val, test = split(load_digits(), 0.1, 0.1, seed=0)
    assert train.class_counts().tolist() == [400] * 10
    assert val.class_counts().tolist() == [50] * 10 and test.class_counts().tolist() == [50] * 10
    assert np.any(np.diff(train.labels) < 0) and np.any(np.diff(val.labels) < 0)  # shuffled, not class-sorted


def test_disjoint_complete_and_seeded():
    data = tagged([30, 17, 9])
    a = split(data, 0.2, 0.1, seed=3)
    b = split(data, 0.2, 0.1, seed=3)
    c = split(data, 0.2, 0.1, seed=4)
    all_ids = np.concatenate([ids(s) for s in a])
    assert sorted(all_ids.tolist()) == list(range(len(data)))
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x.images, y.images)
        np.testing.assert_array_equal(x.labels, y.labels)
    assert not np.array_equal(ids(a[1]), ids(c[1]))
    for s in a:  # labels still match their images
        np.testing.assert_array_equal(s.labels, data.labels[ids(s)])
    # per class: round(n * f), at least one
    assert a[1].class_counts().tolist() == [6, 3, 2] and a[2].class_counts().tolist() == [3, 2, 1]


def test_small_classes_go_to_train_with_warning():
    data = tagged([10, 2, 1])
    with pytest.warns(UserWarning, match=r"fewer than 3 images.*'c1' \(2\), 'c2' \(1\)"):
        train, val, test = split(data, 0.1, 0.1)
    assert train.class_counts().tolist() == [8, 2, 1]
    assert val.class_counts().tolist() == [1, 0, 0] and test.class_counts().tolist() == [1, 0, 0]
    tr, va = split_train_val(tagged([3, 2]), 0.1)  # two splits: two images are enough
    assert va.class_counts().tolist() == [1, 1] and tr.class_counts().tolist() == [2, 1]


def test_zero_fractions_and_bad_fractions():
    data = tagged([5, 5])
    train, val, test = split(data, 0.0, 0.0)
    assert len(train) == 10 and len(val) == len(test) == 0 and val.images.shape == (0, 1, 2, 2)
    for v, t in ((-0.1, 0.1), (0.5, 0.5), (1.0, 0.0)):
        with pytest.raises(DataError, match="fraction"):
            split(data, v, t)


def test_skipped_files_carried_over():
    data = tagged([4, 4])
    data.skipped = [("x.txt", "not an image")]
    assert all(s.skipped == data.skipped for s in split(data))
