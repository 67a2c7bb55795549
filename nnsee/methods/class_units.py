"""Class → units: for a class, the hidden units that vote for it most, and its effective template.

Unit j votes for class k with weight ``W_out[k, j]``; the units shown are those with the largest positive weight.
The effective template ``W_1ᵀ W_out[k] = Σ_j W_out[k, j] W_1[j]`` (the issue's ``W0 @ W1[:, k]``) sums every
unit's image by that weight: the linearisation that treats the activation as the identity (see
:mod:`nnsee.methods.templates`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from torch import nn

from nnsee.methods.base import MethodError
from nnsee.methods.hidden_units import incoming_weights, outgoing_weights
from nnsee.methods.templates import effective_templates


def class_units(model: nn.Module, class_index: int, layer: str = "fc1", top: int = 9) -> tuple[np.ndarray, np.ndarray]:
    """``(units, weights)``: up to ``top`` hidden units with the largest positive ``W_out[class_index, j]``.

    Sorted by weight, descending (ties to the lower unit); fewer than ``top`` when fewer weights are positive.
    """
    w = outgoing_weights(model, layer)
    if not 0 <= class_index < w.shape[0]:
        raise MethodError(f"class index must be in 0..{w.shape[0] - 1}, got {class_index}")
    if top < 1:
        raise MethodError(f"top must be at least 1, got {top}")
    row = w[class_index]
    order = np.lexsort((np.arange(len(row)), -row.astype(np.float64)))
    order = order[row[order] > 0][:top]
    return order.astype(np.int64), row[order]


@dataclass
class ClassUnits:
    """One class's view: its strongest voters, their images, and its effective template."""

    class_index: int
    units: np.ndarray  # (m,) m <= top
    weights: np.ndarray  # (m,) W_out[class_index, units]
    incoming: np.ndarray  # (m, C, H, W) the units' incoming weights
    effective_template: np.ndarray  # (C, H, W)


def class_view(
    model: nn.Module, class_index: int, input_shape: Sequence[int] | None = None, layer: str = "fc1", top: int = 9
) -> ClassUnits:
    """:func:`class_units` plus the units' images and the class's effective template (one hidden layer)."""
    units, weights = class_units(model, class_index, layer, top)
    incoming = incoming_weights(model, input_shape, layer)
    template = effective_templates(model, input_shape)[class_index]
    return ClassUnits(class_index, units, weights, incoming[units], template)
