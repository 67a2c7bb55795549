"""Every numeric option of every registered method has a finite range, and a value outside it (or NaN, inf, a
bool, a number too large for a float) is refused with a MethodError before the model runs once."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from nnsee.errors import MethodError
from nnsee.methods.attribution.registry import METHODS


class MustNotRun(nn.Module):
    """A CNN-shaped model whose forward fails loudly: a refusal must come before any pass."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 2, 3, padding=1)
        self.relu = nn.ReLU()
        self.flat = nn.Flatten()
        self.fc = nn.Linear(2 * 8 * 8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise AssertionError("the model ran: the option was not checked first")


NUMERIC = [(m.name, o) for m in METHODS.values() for o in m.options if o.type in (int, float)]


def test_every_numeric_option_has_a_finite_range():
    assert NUMERIC, "no numeric options found"
    for method, option in NUMERIC:
        assert option.low is not None and option.high is not None, (method, option.name)
        assert math.isfinite(option.low) and math.isfinite(option.high) and option.low <= option.high


def _bad_values(option) -> list:
    return [option.low - 1, option.high + 1, float("nan"), float("inf"), -float("inf"), True, 10**400, "many"]


@pytest.mark.parametrize(("method", "option"), NUMERIC, ids=[f"{m}-{o.name}" for m, o in NUMERIC])
def test_out_of_range_option_refused_before_the_model_runs(method, option):
    x = torch.rand(1, 1, 8, 8)
    for value in _bad_values(option):
        with pytest.raises(MethodError, match=f"option {option.name} takes"):
            METHODS[method].attribute(MustNotRun(), x, 0, **{option.name: value})


@pytest.mark.parametrize(("method", "option"), NUMERIC, ids=[f"{m}-{o.name}" for m, o in NUMERIC])
def test_bounds_themselves_are_accepted(method, option):
    for value in (option.low, option.high):
        assert option.check(value) == value
        assert isinstance(option.check(value), option.type)
