"""Gradient × input: ``x ⊙ ∂f/∂x``, each pixel's first-order contribution to the target score.

The same numbers as Captum's ``InputXGradient(model).attribute(x, target)``. For a linear softmax model and class k
it is exactly ``W[:, k] ⊙ x``, the dot-product contribution map. Signed, per channel, shape ``(N, C, H, W)``.
Only the ordinary gradient is used, so in-place or functional ReLUs make no difference.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from nnsee.methods.attribution.target import as_input, gradient
from nnsee.methods.base import to_numpy


def gradient_x_input(model: nn.Module, x: np.ndarray | torch.Tensor,
                     target: int | Sequence[int] | np.ndarray | torch.Tensor, output: str = "logit") -> np.ndarray:
    """``x ⊙ ∂f_target/∂x``, shape ``(N, C, H, W)`` (a single ``(C, H, W)`` image gets ``N = 1``)."""
    xt = as_input(x, model)
    grad, _ = gradient(model, xt, target, output)
    return to_numpy(xt * grad)
