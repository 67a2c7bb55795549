"""Switching a hidden unit off, measured finely: the mean change of every class's probability and logit.

For hidden unit j of a dense chain and images x_1..x_N (validation images),

    Δp[j, k] = (1/N) Σ_n [ p_k(x_n; h_j := 0) − p_k(x_n) ],    Δz[j, k] = (1/N) Σ_n [ z_k(x_n; h_j := 0) − z_k(x_n) ],

where ``h_j := 0`` sets the unit's activation (after its nonlinearity) to 0 and ``p = softmax(z)``. Unlike the
accuracy change (:func:`nnsee.methods.hidden_units.ablation_effect`), which is 0 unless a prediction flips, Δp moves
with every image. When the layer feeds the output layer, ``z(h_j := 0) = z − h_j · W_out[:, j]`` exactly, so
Δz[j, k] = −mean(h_j) · W_out[k, j] and all units are ablated at once in float64 (chunked, as the accuracy ablation);
deeper layers take one hooked forward pass per unit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from nnsee.methods.base import (
    MethodError,
    Stage,
    batches,
    dense_stages,
    evaluating,
    forward_to,
    hidden_stage,
    param_of,
    to_batch,
    to_numpy,
    zero_units,
)

Transform = Callable[[np.ndarray], np.ndarray]
_CHUNK_ELEMENTS = 1 << 22  # (units × images × classes) values per vectorized chunk


@dataclass(frozen=True)
class UnitAblation:
    """Mean change per (unit, class) when one unit of ``layer`` is switched off, over ``n_images`` images.

    ``probability`` (U, K) float64: mean of p_k(x; h_j := 0) − p_k(x); ``logit`` (U, K): the same for the logits.
    Each row of ``probability`` sums to 0 (probabilities still sum to 1). NaN everywhere when ``n_images`` is 0.
    """

    probability: np.ndarray
    logit: np.ndarray
    n_images: int
    layer: str = ""

    def largest_drop(self, unit: int) -> tuple[int, float]:
        """``(k, Δp)`` of the class whose probability falls most when ``unit`` is off (the most negative Δp[unit];
        ties to the lower class). With no images: ``(0, nan)``."""
        row = self.probability[unit]
        if not np.isfinite(row).any():
            return 0, float("nan")
        k = int(np.nanargmin(row))
        return k, float(row[k])


def unit_ablation(
    model: nn.Module,
    images_std: np.ndarray,
    *,
    layer: str | None = None,
    batch_size: int = 256,
    transform: Transform | None = None,
) -> UnitAblation:
    """Δp and Δz (see the module) for every unit of the dense hidden layer ``layer`` (default: the first hidden layer,
    ``fc1`` in nnsee's mlp) over the standardized ``images_std`` (N, C, H, W).

    ``transform`` (a run's standardization) turns each batch into what the model sees, so the images may be given as
    stored, a streamed set included. Memory is bounded by ``batch_size`` and a fixed chunk of units, not by N or U.
    """
    what = "unit ablation"
    stages = dense_stages(model, None, what)
    layer = stages[0].name if layer is None else layer
    i = hidden_stage(stages, layer, what)
    if batch_size < 1:
        raise MethodError(f"batch_size must be at least 1, got {batch_size}")
    n_units, n_classes = stages[i].linear.out_features, stages[-1].linear.out_features
    device, _ = param_of(model)
    d_prob = torch.zeros(n_units, n_classes, dtype=torch.float64, device=device)
    d_logit = torch.zeros(n_units, n_classes, dtype=torch.float64, device=device)
    step = _exact_batch if i == len(stages) - 2 else _hooked_batch
    shape, n = tuple(np.shape(images_std)[1:]), 0
    with evaluating(model):
        for _, xb in batches(images_std, batch_size, transform):
            x = to_batch(xb, shape, model)
            step(model, stages, i, x, d_prob, d_logit)
            n += len(x)
    if n == 0:
        nan = np.full((n_units, n_classes), np.nan)
        return UnitAblation(nan, nan.copy(), 0, layer)
    return UnitAblation(to_numpy(d_prob) / n, to_numpy(d_logit) / n, n, layer)


def _exact_batch(model: nn.Module, stages: list[Stage], i: int, x: torch.Tensor, d_prob: torch.Tensor,
                 d_logit: torch.Tensor) -> None:
    """Add one batch's Σ_n Δp and Σ_n Δz for all units: z(h_j := 0) = z − h_j W_out[:, j], in float64."""
    out = stages[-1].linear
    w_t = out.weight.detach().double().T  # (U, K)
    h = forward_to(stages, x, i).double()  # (B, U)
    logits = h @ w_t
    if out.bias is not None:
        logits = logits + out.bias.detach().double()
    p = torch.softmax(logits, dim=1)  # (B, K)
    d_logit -= h.sum(0)[:, None] * w_t
    step = max(1, _CHUNK_ELEMENTS // max(1, h.shape[0] * w_t.shape[1]))
    for u0 in range(0, w_t.shape[0], step):
        hu, wu = h.T[u0 : u0 + step], w_t[u0 : u0 + step]  # (u, B), (u, K)
        ablated = logits[None] - hu[:, :, None] * wu[:, None, :]  # (u, B, K)
        d_prob[u0 : u0 + step] += torch.softmax(ablated, dim=2).sum(1) - p.sum(0)


def _hooked_batch(model: nn.Module, stages: list[Stage], i: int, x: torch.Tensor, d_prob: torch.Tensor,
                  d_logit: torch.Tensor) -> None:
    """Add one batch's Σ_n Δp and Σ_n Δz, one forward pass per unit with its activation zeroed."""
    logits = model(x).double()
    p_sum, z_sum = torch.softmax(logits, dim=1).sum(0), logits.sum(0)
    for j in range(d_prob.shape[0]):
        with zero_units(model, stages[i].act_name, [j]):
            ablated = model(x).double()
        d_prob[j] += torch.softmax(ablated, dim=1).sum(0) - p_sum
        d_logit[j] += ablated.sum(0) - z_sum
