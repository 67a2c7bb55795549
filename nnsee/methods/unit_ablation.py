"""Switching a hidden unit off, measured finely: the mean change of every class's probability and logit.

For hidden unit j of a dense chain and images x_1..x_N (validation images),

    Δp[j, k] = (1/N) Σ_n [ p_k(x_n; h_j := 0) − p_k(x_n) ],    Δz[j, k] = (1/N) Σ_n [ z_k(x_n; h_j := 0) − z_k(x_n) ],

where ``h_j := 0`` sets the unit's activation (after its nonlinearity) to 0 and ``p = softmax(z)``. Unlike the
accuracy change (:func:`nnsee.methods.hidden_units.ablation_effect`), which is 0 unless a prediction flips, Δp moves
with every image. When the layer feeds the output layer, ``z(h_j := 0) = z − h_j · W_out[:, j]`` exactly, so
Δz[j, k] = −mean(h_j) · W_out[k, j] and all units are ablated at once in float64 (chunked, as the accuracy ablation);
deeper layers take one hooked forward pass per unit. Given labels, the same pass also gives the per-class accuracy
change ``acc_k(h_j := 0) − acc_k`` (what :func:`nnsee.methods.hidden_units.ablation_effect` returns).
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
    ``accuracy`` (U, K), given labels: acc_k(h_j := 0) − acc_k over the images of class k (NaN for a class without
    images), else None.
    """

    probability: np.ndarray
    logit: np.ndarray
    n_images: int
    layer: str = ""
    accuracy: np.ndarray | None = None

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
    labels: np.ndarray | None = None,
) -> UnitAblation:
    """Δp and Δz (see the module) for every unit of the dense hidden layer ``layer`` (default: the first hidden layer,
    ``fc1`` in nnsee's mlp) over the standardized ``images_std`` (N, C, H, W); with ``labels`` (N,) also the
    per-class accuracy change.

    ``transform`` (a run's standardization) turns each batch into what the model sees, so the images may be given as
    stored, a streamed set included. Memory is bounded by ``batch_size`` and a fixed chunk of units, not by N or U.
    """
    what = "unit ablation"
    stages = dense_stages(model, None, what)
    layer = stages[0].name if layer is None else layer
    i = hidden_stage(stages, layer, what)
    if batch_size < 1:
        raise MethodError(f"batch_size must be at least 1, got {batch_size}")
    n_classes = stages[-1].linear.out_features
    if labels is not None:
        labels = np.asarray(labels)
        if labels.shape != (len(images_std),):
            raise MethodError(f"expected {len(images_std)} labels (one per image), got shape {labels.shape}")
        labels = labels.astype(np.int64)
        if len(labels) and (labels.min() < 0 or labels.max() >= n_classes):
            raise MethodError(f"labels must be class indices 0..{n_classes - 1}, found {labels.min()}..{labels.max()}")
    sums = _Sums(stages[i].linear.out_features, n_classes, param_of(model)[0], labels is not None)
    ablate = _exact_batch if i == len(stages) - 2 else _hooked_batch
    shape = tuple(np.shape(images_std)[1:])
    with evaluating(model):
        for start, xb in batches(images_std, batch_size, transform):
            x = to_batch(xb, shape, model)
            y = None if labels is None else torch.as_tensor(labels[start : start + len(x)], device=sums.device)
            ablate(model, stages, i, x, sums.batch(y))
    return sums.result(layer, labels)


class _Sums:
    """Running sums of one ablation pass: Σ Δp, Σ Δz (U, K), and with labels the correct counts per class."""

    def __init__(self, n_units: int, n_classes: int, device: torch.device, with_labels: bool) -> None:
        zeros = {"dtype": torch.float64, "device": device}
        self.device, self.n = device, 0
        self.d_prob, self.d_logit = torch.zeros(n_units, n_classes, **zeros), torch.zeros(n_units, n_classes, **zeros)
        self.correct_base = torch.zeros(n_classes, **zeros) if with_labels else None
        self.correct_ablated = torch.zeros(n_units, n_classes, **zeros) if with_labels else None
        self.y: torch.Tensor | None = None
        self.onehot: torch.Tensor | None = None
        self.buffer = torch.empty(0, **zeros)

    def batch(self, y: torch.Tensor | None) -> _Sums:
        self.y = y
        if y is not None:
            self.onehot = torch.nn.functional.one_hot(y, self.d_prob.shape[1]).double()
        return self

    def base(self, logits: torch.Tensor) -> torch.Tensor:
        """Count the batch's images and its base predictions; return Σ_n p(x_n) (K,)."""
        self.n += len(logits)
        if self.y is not None:
            self.correct_base += (logits.argmax(1) == self.y).double() @ self.onehot
        return torch.softmax(logits, dim=1).sum(0)

    def ablated(self, units: slice, logits: torch.Tensor, p_sum: torch.Tensor) -> None:
        """Add ablated ``logits`` (u, B, K) of ``units``; ``logits`` is overwritten (it may be the reused buffer)."""
        if self.y is not None:
            self.correct_ablated[units] += (logits.argmax(2) == self.y).double() @ self.onehot
        logits.sub_(logits.amax(2, keepdim=True)).exp_()  # softmax in place: no fresh (u, B, K) allocations
        logits.div_(logits.sum(2, keepdim=True))
        self.d_prob[units] += logits.sum(1) - p_sum

    def scratch(self, shape: tuple[int, int, int]) -> torch.Tensor:
        """A reused (u, B, K) buffer (grown when needed): fresh memory is several times slower to write."""
        n = shape[0] * shape[1] * shape[2]
        if self.buffer.numel() < n:
            self.buffer = torch.empty(n, dtype=torch.float64, device=self.device)
        return self.buffer[:n].view(shape)

    def result(self, layer: str, labels: np.ndarray | None) -> UnitAblation:
        accuracy = None
        if labels is not None:
            support = np.bincount(labels, minlength=self.d_prob.shape[1]).astype(np.float64)
            delta = to_numpy(self.correct_ablated) - to_numpy(self.correct_base)[None, :]
            with np.errstate(invalid="ignore", divide="ignore"):
                accuracy = np.where(support > 0, delta / np.where(support > 0, support, 1), np.nan)
        if self.n == 0:
            nan = np.full(tuple(self.d_prob.shape), np.nan)
            return UnitAblation(nan, nan.copy(), 0, layer, accuracy)
        return UnitAblation(to_numpy(self.d_prob) / self.n, to_numpy(self.d_logit) / self.n, self.n, layer, accuracy)


def _exact_batch(model: nn.Module, stages: list[Stage], i: int, x: torch.Tensor, sums: _Sums) -> None:
    """One batch, all units: z(h_j := 0) = z − h_j W_out[:, j], in float64, a chunk of units at a time."""
    out = stages[-1].linear
    w_t = out.weight.detach().double().T  # (U, K)
    h = forward_to(stages, x, i).double()  # (B, U)
    logits = h @ w_t
    if out.bias is not None:
        logits = logits + out.bias.detach().double()
    p_sum = sums.base(logits)
    sums.d_logit -= h.sum(0)[:, None] * w_t
    n_units, n_classes = w_t.shape
    step = max(1, _CHUNK_ELEMENTS // max(1, h.shape[0] * n_classes))
    for u0 in range(0, n_units, step):
        hu, wu = h.T[u0 : u0 + step], w_t[u0 : u0 + step]  # (u, B), (u, K)
        ablated = torch.mul(hu[:, :, None], wu[:, None, :], out=sums.scratch((len(hu), len(h), n_classes)))
        sums.ablated(slice(u0, u0 + step), torch.sub(logits, ablated, out=ablated), p_sum)


def _hooked_batch(model: nn.Module, stages: list[Stage], i: int, x: torch.Tensor, sums: _Sums) -> None:
    """One batch, one forward pass per unit with its activation zeroed."""
    logits = model(x).double()
    p_sum = sums.base(logits)
    for j in range(sums.d_prob.shape[0]):
        with zero_units(model, stages[i].act_name, [j]):
            ablated = model(x).double()
        sums.d_logit[j] += (ablated - logits).sum(0)
        sums.ablated(slice(j, j + 1), ablated[None], p_sum)
