"""Multinomial logistic regression: no hidden layer, ``logits = W x + b``, ``p = softmax(logits)``."""

from __future__ import annotations

from collections.abc import Sequence
from math import prod

from torch import nn


def softmax_shapes(input_shape: Sequence[int], n_classes: int) -> dict[str, tuple[int, ...]]:
    """The weights' shapes: ``out.weight`` (K, C·H·W) and ``out.bias`` (K,)."""
    return {"out.weight": (n_classes, prod(input_shape)), "out.bias": (n_classes,)}


class SoftmaxRegression(nn.Sequential):
    """``flatten`` then ``out = nn.Linear(C*H*W, n_classes)``; ``out.weight[k]`` is class k's template."""

    def __init__(self, input_shape: Sequence[int], n_classes: int) -> None:
        super().__init__()
        self.add_module("flatten", nn.Flatten())
        self.add_module("out", nn.Linear(prod(input_shape), n_classes))
        self.nnsee_spec = {"name": "softmax", "input_shape": list(input_shape), "n_classes": n_classes}
