"""batches(): consecutive runs of the positions, in order, the same with worker processes as without."""

from __future__ import annotations

import numpy as np
import pytest

from nnsee.data import ImageSet
from nnsee.data.loader import batches
from nnsee.errors import DataError


def _set(n: int = 23) -> ImageSet:
    rng = np.random.default_rng(0)
    images = rng.random((n, 1, 4, 4), dtype=np.float32)
    return ImageSet(images, np.arange(n) % 3, ["a", "b", "c"])


def test_in_memory_batches_are_views_of_consecutive_runs() -> None:
    data = _set()
    got = list(batches(data, 5))
    assert [len(b.index) for b in got] == [5, 5, 5, 5, 3]
    for k, b in enumerate(got):  # independent reference: plain slices of the arrays
        assert np.array_equal(b.images.numpy(), data.images[5 * k : 5 * k + 5])
        assert np.array_equal(b.labels.numpy(), data.labels[5 * k : 5 * k + 5])
        assert b.index.tolist() == list(range(5 * k, min(5 * k + 5, 23)))
        assert np.shares_memory(b.images.numpy(), data.images)  # a view, not a copy
        assert b.skipped == []


def test_positions_order_and_transform() -> None:
    data = _set()
    p = np.array([7, 3, 3, 22, 0, 11, 12])
    got = list(batches(data, 3, positions=p, transform=lambda x: x * 2))
    assert [b.index.tolist() for b in got] == [[7, 3, 3], [22, 0, 11], [12]]
    assert np.array_equal(np.concatenate([b.images.numpy() for b in got]), data.images[p] * 2)
    assert np.concatenate([b.labels.numpy() for b in got]).tolist() == data.labels[p].tolist()


def test_workers_equal_no_workers_in_order() -> None:
    data = _set(40)
    p = np.random.default_rng(1).permutation(40)
    one = list(batches(data, 6, positions=p, transform=lambda x: x + 1))
    two = list(batches(data, 6, positions=p, transform=lambda x: x + 1, workers=2))
    assert len(one) == len(two) == 7
    for a, b in zip(one, two, strict=True):
        assert b.index.tolist() == a.index.tolist()
        assert np.array_equal(a.images.numpy(), b.images.numpy())
        assert np.array_equal(a.labels.numpy(), b.labels.numpy())


@pytest.mark.parametrize("kwargs", [{"batch_size": 0}, {"batch_size": 2, "workers": -1},
                                    {"batch_size": 2, "positions": np.array([0, 99])},
                                    {"batch_size": 2, "positions": np.array([0.5])}])
def test_bad_arguments_are_one_line(kwargs: dict) -> None:
    with pytest.raises(DataError) as e:
        next(batches(_set(), **kwargs))
    assert "\n" not in str(e.value)
