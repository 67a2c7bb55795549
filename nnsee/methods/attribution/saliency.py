"""Saliency (Simonyan et al. 2014): how much each pixel's change would change the target score, ``|∂f/∂x|``.

``reduce="none"`` gives ``|∂f/∂x|`` per channel, exactly Captum's ``Saliency(model).attribute(x, target, abs=True)``.
``reduce="max"`` (the default) takes the **maximum over channels**, as Simonyan et al. and TorchRay do, giving one map
per image of shape ``(N, 1, H, W)``. (Captum's visualizer instead *sums* channels when it draws.)

Only the ordinary gradient is used, so how the model writes its ReLUs (modules, in-place modules, functional
``F.relu``) makes no difference here.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from nnsee.errors import not_one_of
from nnsee.methods.attribution.target import as_input, gradient
from nnsee.methods.base import MethodError, to_numpy

REDUCTIONS = ("max", "none")


def saliency(model: nn.Module, x: np.ndarray | torch.Tensor, target: int | Sequence[int] | np.ndarray | torch.Tensor,
             output: str = "logit", reduce: str = "max") -> np.ndarray:
    """``|∂f_target/∂x|``: ``(N, 1, H, W)`` maxed over channels (``reduce="max"``) or ``(N, C, H, W)`` (``"none"``)."""
    if reduce not in REDUCTIONS:
        raise MethodError(not_one_of("reduce", reduce, REDUCTIONS))
    grad, _ = gradient(model, as_input(x, model), target, output)
    grad = grad.abs()
    if reduce == "max":
        grad = grad.amax(dim=1, keepdim=True)
    return to_numpy(grad)
