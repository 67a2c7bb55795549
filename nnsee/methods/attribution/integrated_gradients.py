"""Integrated gradients (Sundararajan et al. 2017): the gradient averaged along the straight path from a baseline.

``attr = (x − x′) ⊙ Σ_i w_i ∇f(x′ + α_i (x − x′))`` with Captum's step points ``α_i`` and weights ``w_i``:

* ``"gausslegendre"`` (Captum's default): ``α_i = (1 + t_i) / 2``, ``w_i = u_i / 2`` for the Gauss–Legendre nodes
  ``t_i`` and weights ``u_i`` of ``numpy.polynomial.legendre.leggauss(steps)``;
* ``"riemann_left" | "riemann_right" | "riemann_middle" | "riemann_trapezoid"``: ``w_i = 1/steps`` (the trapezoid
  halves the two end weights) at ``α = linspace(0, 1 − 1/n)``, ``linspace(1/n, 1)``, ``linspace(1/(2n), 1 − 1/(2n))``
  or ``linspace(0, 1)``.

So the numbers are those of ``IntegratedGradients(model).attribute(x, baselines, target, n_steps=steps, method=...,
return_convergence_delta=True)``; ``delta = Σ attr − (f(x) − f(x′))`` is the convergence delta (completeness
error), computed here in float64. The ``steps × N`` path points are evaluated in chunks whose size is chosen from the
input size (:func:`ig_batch_size`), which on a CPU is faster than Captum's default of one batch of all of them.
Only the ordinary gradient is used, so in-place or functional ReLUs make no difference.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from nnsee.methods.attribution.target import as_input, selected, target_index
from nnsee.methods.base import MethodError, to_numpy

RIEMANN = ("riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid")
METHODS = ("gausslegendre", *RIEMANN)
# Elements per chunk: 16 images of 3×128×128, the fastest chunk measured for a small CNN on a CPU (forward and
# backward); small inputs get more images per chunk, at most MAX_CHUNK.
CHUNK_ELEMENTS = 16 * 3 * 128 * 128
MAX_CHUNK = 512


@dataclass(frozen=True)
class IGResult:
    """``attributions`` (N, C, H, W) in the model's dtype; ``delta`` (N,) float64 = Σ attributions − (f(x) − f(x′))."""

    attributions: np.ndarray
    delta: np.ndarray


def step_points(method: str, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """``(alphas, weights)`` of the path integral, float64, exactly as Captum's ``approximation_parameters``."""
    if method not in METHODS:
        raise MethodError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    if steps < (1 if method == "gausslegendre" else 2):
        raise MethodError(f"{method} needs steps ≥ {1 if method == 'gausslegendre' else 2}, got {steps}")
    if method == "gausslegendre":
        nodes, weights = np.polynomial.legendre.leggauss(steps)
        return 0.5 * (1 + nodes), 0.5 * weights
    n = steps
    weights = np.full(n, 1 / n)
    if method == "riemann_trapezoid":
        weights[[0, -1]] /= 2
        alphas = torch.linspace(0, 1, n)
    elif method == "riemann_left":
        alphas = torch.linspace(0, 1 - 1 / n, n)
    elif method == "riemann_middle":
        alphas = torch.linspace(1 / (2 * n), 1 - 1 / (2 * n), n)
    else:
        alphas = torch.linspace(1 / n, 1, n)
    return np.asarray(alphas.tolist()), weights  # torch.linspace in float32, as Captum's


def ig_batch_size(image_shape: Sequence[int]) -> int:
    """Path points per forward/backward pass: ``CHUNK_ELEMENTS // prod(image_shape)``, between 1 and ``MAX_CHUNK``."""
    return int(min(MAX_CHUNK, max(1, CHUNK_ELEMENTS // max(1, int(np.prod(image_shape))))))


def as_baseline(baseline: float | np.ndarray | torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``baseline`` (a number, one image, or one per input) as a tensor of ``x``'s shape, device and dtype."""
    b = torch.as_tensor(np.asarray(baseline) if not isinstance(baseline, torch.Tensor) else baseline)
    b = b.to(device=x.device, dtype=x.dtype)
    try:
        return torch.broadcast_to(b, x.shape).contiguous()
    except RuntimeError:
        raise MethodError(f"the baseline must be a number or broadcast to the inputs {tuple(x.shape)} (one image "
                          f"(C, H, W) or one per input), got {tuple(b.shape)}") from None


def integrated_gradients(model: nn.Module, x: np.ndarray | torch.Tensor,
                         target: int | Sequence[int] | np.ndarray | torch.Tensor,
                         baseline: float | np.ndarray | torch.Tensor = 0.0, steps: int = 50,
                         method: str = "gausslegendre", output: str = "logit",
                         batch_size: int | None = None) -> IGResult:
    """Integrated gradients of ``f_target`` from ``baseline`` to ``x``, with the convergence delta.

    ``batch_size``: path points per forward/backward pass (None: :func:`ig_batch_size`). The model is evaluated in
    eval mode and gets its training flag back.
    """
    xt = as_input(x, model)
    n = len(xt)
    base = as_baseline(baseline, xt)
    alphas, weights = step_points(method, int(steps))
    chunk = ig_batch_size(xt.shape[1:]) if batch_size is None else int(batch_size)
    if chunk < 1:
        raise MethodError(f"batch_size must be at least 1, got {batch_size}")
    rows = len(alphas) * n  # row r: step r // n of image r % n (step-major, as Captum)
    chunk = -(-rows // -(-rows // chunk))  # as many passes as chunks of `chunk` need, evenly filled: 50 = 4 × 12.5
    diff = xt - base
    alpha_t = torch.as_tensor(alphas, dtype=xt.dtype, device=xt.device)
    weight_t = torch.as_tensor(weights, dtype=xt.dtype, device=xt.device)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            ends = model(torch.cat([xt, base]))
            t = target_index(target, n, ends.shape[1] if ends.ndim == 2 else 0, xt.device)
            f = selected(ends, torch.cat([t, t]), output).double()
        total = torch.zeros_like(xt)
        for start in range(0, rows, chunk):
            r = torch.arange(start, min(start + chunk, rows), device=xt.device)
            step, img = r // n, r % n
            points = (base[img] + alpha_t[step].view(-1, 1, 1, 1) * diff[img]).requires_grad_(True)
            with torch.enable_grad():  # the model runs on a copy: an in-place first layer may change it
                value = selected(model(points.clone()), t[img], output)
                (grad,) = torch.autograd.grad(value.sum(), points)
            total.index_add_(0, img, grad * weight_t[step].view(-1, 1, 1, 1))
    finally:
        model.train(was_training)
    attributions = total * diff
    delta = attributions.double().flatten(1).sum(1) - (f[:n] - f[n:])
    return IGResult(to_numpy(attributions), to_numpy(delta))
