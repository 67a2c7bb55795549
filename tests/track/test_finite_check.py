"""The finiteness check every weights write and read makes (checkpoint.all_finite): a sum first, value by value only
when the sum is not finite."""

from __future__ import annotations

import pytest
import torch

from nnsee.train.checkpoint import all_finite


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
def test_all_finite_equals_isfinite_everywhere(dtype) -> None:
    big = torch.finfo(dtype).max
    inf, nan = float("inf"), float("nan")
    cases = [torch.zeros(0, dtype=dtype), torch.randn(1000, dtype=dtype), torch.full((10,), big, dtype=dtype),
             *(torch.tensor(v, dtype=dtype) for v in ([big, big, -big], [1.0, nan], [inf, 1.0], [-inf], [inf, -inf])),
             torch.randn(3, 4, 5, dtype=dtype)]
    cases[-1][1, 2, 3] = nan
    assert [all_finite(t) for t in cases[:3]] == [True] * 3  # finite sums and sums that overflow
    for t in cases:
        assert all_finite(t) == bool(torch.isfinite(t).all()), t
