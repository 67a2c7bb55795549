"""The training objective: cross-entropy plus an L2 penalty on weights (never on biases)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def penalized_parameters(model: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """Split trainable parameters into (weights, others): weights are tensors of 2 or more dimensions."""
    weights, others = [], []
    for p in model.parameters():
        if p.requires_grad:
            (weights if p.ndim > 1 else others).append(p)
    return weights, others


def l2_penalty(model: nn.Module, l2: float) -> torch.Tensor:
    """``(λ/2) Σ ‖W‖²`` over every weight tensor; its gradient is ``λ W``."""
    weights, _ = penalized_parameters(model)
    if l2 == 0 or not weights:
        return torch.zeros(())
    return 0.5 * l2 * sum(w.pow(2).sum() for w in weights)


def objective(model: nn.Module, x: torch.Tensor, y: torch.Tensor, l2: float) -> torch.Tensor:
    """``mean_i(−log softmax(model(x_i))[y_i]) + (λ/2) Σ ‖W‖²``."""
    return F.cross_entropy(model(x), y) + l2_penalty(model, l2)
