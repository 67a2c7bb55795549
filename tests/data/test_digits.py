"""The built-in digits: 5,000 real MNIST digits, 500 per class, packed in the package."""

from __future__ import annotations

import subprocess
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from nnsee.data import load_digits


def test_digits_shape_counts_and_scale():
    d = load_digits()
    assert d.images.shape == (5000, 1, 28, 28) and d.images.dtype == np.float32
    assert d.class_counts().tolist() == [500] * 10 and d.class_names == [str(i) for i in range(10)]
    assert d.images.min() == 0.0 and d.images.max() == 1.0 and d.source == "digits"
    assert np.all(np.diff(d.labels) >= 0)  # stored sorted by class, as mnist_5k is: splits must stratify
    # real handwriting, not noise: a digit's ink sits in the middle, the border is blank
    mean = d.images.mean(axis=0)[0]
    assert mean[:2].max() < 0.01 and mean[10:18, 10:18].mean() > 0.2


def test_digits_file_is_in_the_package_and_tracked():
    ref = resources.files("nnsee.data").joinpath("files").joinpath("digits.npz")
    assert ref.is_file()
    path = Path(str(ref))
    size = path.stat().st_size
    assert 100_000 < size < 2_000_000
    in_git = subprocess.run(["git", "rev-parse", "--is-inside-work-tree"], cwd=path.parent, capture_output=True)
    if in_git.returncode != 0:
        pytest.skip("not a git checkout")
    tracked = subprocess.run(["git", "ls-files", "--error-unmatch", str(path)], cwd=path.parent,
                             capture_output=True, check=False)
    assert tracked.returncode == 0, "digits.npz must be committed (hatchling packs files tracked under nnsee/)"
