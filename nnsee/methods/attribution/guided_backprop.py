"""Guided backprop (Springenberg et al. 2015): the gradient of the target score with ReLU backward ``relu(g·1[x>0])``.

Equal to Captum's ``GuidedBackprop`` (a test checks it); the rule lives in
:mod:`nnsee.methods.attribution.relu_rules`, shared with the deconvnet. Through eval-mode BatchNorm (a per-channel
scale ``γ / √(σ² + ε)`` going down) and residual adds (the signal sent down both paths, the two summed where they
fork) it behaves as the deconvnet does: see :mod:`nnsee.methods.attribution.deconvnet`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from nnsee.methods.attribution.relu_rules import rule_gradient


def guided_backprop(model: nn.Module, x: np.ndarray | torch.Tensor, target: int | Sequence[int] | np.ndarray,
                    output: str = "logit") -> np.ndarray:
    """Guided-backprop map (N, C, H, W) of ``f_target(x)`` (``output``: "logit" or "softmax") for images ``x``.

    Only positive gradients pass each ReLU, and only through units active in the forward pass. The model must use
    ``nn.ReLU`` modules (MethodError otherwise).
    """
    return rule_gradient(model, x, target, output, "guided")
