"""Integrated gradients (Sundararajan et al. 2017): the gradient averaged along the straight path from a baseline.

``attr = (x − x′) ⊙ Σ_i w_i ∇f(x′ + α_i (x − x′))`` with Captum's step points ``α_i`` and weights ``w_i`` of the
``quadrature`` rule (Captum's ``method`` argument):

* ``"gausslegendre"`` (Captum's default): ``α_i = (1 + t_i) / 2``, ``w_i = u_i / 2`` for the Gauss–Legendre nodes
  ``t_i`` and weights ``u_i`` of ``numpy.polynomial.legendre.leggauss(steps)``;
* ``"riemann_left" | "riemann_right" | "riemann_middle" | "riemann_trapezoid"``: ``w_i = 1/steps`` (the trapezoid
  halves the two end weights) at ``α = linspace(0, 1 − 1/n)``, ``linspace(1/n, 1)``, ``linspace(1/(2n), 1 − 1/(2n))``
  or ``linspace(0, 1)``.

So the numbers are those of ``IntegratedGradients(model).attribute(x, baselines, target, n_steps=steps,
method=quadrature, return_convergence_delta=True)``; ``delta = Σ attr − (f(x) − f(x′))`` is the convergence delta
(completeness error), computed here in float64. The ``steps × N`` path points are evaluated in chunks whose size the
shared tuner (:mod:`nnsee.models.chunking`) picks from the measured time per path point on this machine, at most
:func:`ig_batch_size` (a memory bound from the input size), which on a CPU is faster than Captum's default of one batch
of all of them.
Only the ordinary gradient is used, so in-place or functional ReLUs make no difference.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from nnsee.errors import not_one_of
from nnsee.methods.attribution.target import as_input, selected, target_index
from nnsee.methods.base import MethodError, to_numpy
from nnsee.models.chunking import chunk_key, chunks
from nnsee.models.hooks import eval_mode

RIEMANN = ("riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid")
QUADRATURES = ("gausslegendre", *RIEMANN)  # the integration rules, Captum's ``method`` values
# The memory bound on a chunk: at most 16 images of 3×128×128 (input elements; autograd keeps every activation of a
# chunk until its backward), small inputs at most MAX_CHUNK. The tuner picks the size below it.
CHUNK_ELEMENTS = 16 * 3 * 128 * 128
MAX_CHUNK = 512


@dataclass(frozen=True)
class IGResult:
    """``attributions`` (N, C, H, W) in the model's dtype; ``delta`` (N,) float64 = Σ attributions − (f(x) − f(x′))."""

    attributions: np.ndarray
    delta: np.ndarray


def step_points(quadrature: str, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """``(alphas, weights)`` of the path integral, float64, exactly as Captum's ``approximation_parameters``."""
    if quadrature not in QUADRATURES:
        raise MethodError(not_one_of("quadrature", quadrature, QUADRATURES))
    if steps < (1 if quadrature == "gausslegendre" else 2):
        raise MethodError(f"{quadrature} needs steps ≥ {1 if quadrature == 'gausslegendre' else 2}, got {steps}")
    if quadrature == "gausslegendre":
        nodes, weights = np.polynomial.legendre.leggauss(steps)
        return 0.5 * (1 + nodes), 0.5 * weights
    n = steps
    weights = np.full(n, 1 / n)
    if quadrature == "riemann_trapezoid":
        weights[[0, -1]] /= 2
        alphas = torch.linspace(0, 1, n)
    elif quadrature == "riemann_left":
        alphas = torch.linspace(0, 1 - 1 / n, n)
    elif quadrature == "riemann_middle":
        alphas = torch.linspace(1 / (2 * n), 1 - 1 / (2 * n), n)
    else:
        alphas = torch.linspace(1 / n, 1, n)
    return np.asarray(alphas.tolist()), weights  # torch.linspace in float32, as Captum's


def ig_batch_size(image_shape: Sequence[int]) -> int:
    """The most path points per forward/backward pass: ``CHUNK_ELEMENTS // prod(image_shape)``, within
    1..``MAX_CHUNK`` (3×224×224: 5; 3×128×128: 16; 1×28×28: 512)."""
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


# CPU float32 models made only of these layers run on channels-last (NHWC) tensors: max-pooling there is about 10×
# faster than on NCHW, and mkldnn's convolutions give the same bits in either layout. None of them needs NCHW memory
# (no .view()), so a model made of them computes the same function.
NHWC_SAFE = (nn.Conv2d, nn.ReLU, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Sigmoid, nn.Tanh, nn.MaxPool2d,
             nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d, nn.BatchNorm2d, nn.Dropout, nn.Dropout2d,
             nn.Identity, nn.Flatten, nn.Linear)
# First layers that are affine in their input: the gradient through them is a linear map of the gradient at their
# output, so the step-weighted sum of those output gradients goes through their backward once, not once per step.
AFFINE_FIRST = (nn.Conv2d, nn.Linear)


def _hooked(module: nn.Module) -> bool:
    return any(getattr(module, name, None) for name in ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks",
                                                        "_backward_pre_hooks"))


def _global_hooks() -> bool:
    from torch.nn.modules import module as m

    return any(getattr(m, name, None) for name in ("_global_forward_hooks", "_global_forward_pre_hooks",
                                                   "_global_backward_hooks", "_global_backward_pre_hooks"))


def _affine_first(model: nn.Module) -> tuple[nn.Module, list[nn.Module]] | None:
    """``(first layer, the layers after it)`` where ``model`` is a plain :class:`nn.Sequential` (its own forward, no
    hooks) whose first layer is one of :data:`AFFINE_FIRST` (exactly that class, no hooks); None otherwise."""
    if not isinstance(model, nn.Sequential) or type(model).forward is not nn.Sequential.forward or len(model) < 2:
        return None
    layers = list(model)
    if type(layers[0]) not in AFFINE_FIRST or _hooked(model) or _hooked(layers[0]) or _global_hooks():
        return None
    return layers[0], layers[1:]


def _layout(model: nn.Module, x: torch.Tensor) -> torch.memory_format:
    """channels-last for a CPU float32 batch of images through a model made only of :data:`NHWC_SAFE` layers in
    :class:`nn.Sequential` containers that keep Sequential's forward (a forward of one's own may ``.view()``)."""
    if x.ndim == 4 and x.device.type == "cpu" and x.dtype == torch.float32 and all(
            type(m) in NHWC_SAFE or (isinstance(m, nn.Sequential) and type(m).forward is nn.Sequential.forward)
            for m in model.modules()):
        return torch.channels_last
    return torch.contiguous_format


def _rows(t: torch.Tensor) -> torch.Tensor:
    """``t`` (k, ...), contiguous or channels-last, as a (k, m) view of its memory."""
    if t.ndim == 4 and not t.is_contiguous():
        return t.permute(0, 2, 3, 1).view(len(t), -1)
    return t.view(len(t), -1)


def integrated_gradients(model: nn.Module, x: np.ndarray | torch.Tensor,
                         target: int | Sequence[int] | np.ndarray | torch.Tensor,
                         baseline: float | np.ndarray | torch.Tensor = 0.0, steps: int = 50,
                         quadrature: str = "gausslegendre", output: str = "logit",
                         batch_size: int | None = None) -> IGResult:
    """Integrated gradients of ``f_target`` from ``baseline`` to ``x``, with the convergence delta.

    ``batch_size``: path points per forward/backward pass (None: the tuner's choice, at most :func:`ig_batch_size`,
    kept per model, input shape, dtype and device). The model is evaluated in eval mode and gets its training flag
    back.

    The path points and every forward value are those Captum computes (the same operations, so the same rounding:
    max-pool switches and ReLU gates, which float32 rounding near the baseline can flip, flip alike). Two things are
    done once instead of once per step, which changes only the rounding of sums: where the model is a plain
    ``nn.Sequential`` starting with a convolution or linear layer, the gradient is taken at that layer's output, the
    weighted sum over steps accumulated there, and pulled back through the first layer once; and the weighted sum
    is one matrix product per pass. CPU float32 image models of standard layers run in channels-last memory.
    """
    xt = as_input(x, model)
    n = len(xt)
    base = as_baseline(baseline, xt)
    alphas, weights = step_points(quadrature, int(steps))
    if batch_size is not None and int(batch_size) < 1:
        raise MethodError(f"batch_size must be at least 1, got {batch_size}")
    rows = len(alphas) * n  # row r: step r // n of image r % n (step-major, as Captum)
    spans = chunks(rows, chunk_key(model, "ig", xt.shape[1:], xt.dtype, xt.device), ig_batch_size(xt.shape[1:]),
                   batch_size, xt.device)
    layout = _layout(model, xt)
    xl, bl = xt.contiguous(memory_format=layout), base.contiguous(memory_format=layout)
    diff = xl - bl
    alpha_t = torch.as_tensor(alphas, dtype=xt.dtype, device=xt.device)
    weight_t = torch.as_tensor(weights, dtype=xt.dtype, device=xt.device)
    split = _affine_first(model)
    with eval_mode(model, grad=True):  # no_grad for the two ends and the first layer's forwards, below
        with torch.no_grad():
            ends = model(torch.cat([xl, bl]))
            t = target_index(target, n, ends.shape[1] if ends.ndim == 2 else 0, xt.device)
            f = selected(ends, torch.cat([t, t]), output).double()
        total = total_rows = None
        for start, stop in spans:
            r = torch.arange(start, stop, device=xt.device)
            step, img = r // n, r % n
            points = torch.empty((len(r), *xt.shape[1:]), dtype=xt.dtype, device=xt.device, memory_format=layout)
            torch.mul(alpha_t[step].view(-1, *[1] * (xt.ndim - 1)), diff[img] if n > 1 else diff, out=points)
            points += bl[img] if n > 1 else bl  # base + α (x − base): Captum's operations, in its order
            with torch.enable_grad():
                if split is None:  # the model runs on a copy: an in-place first layer may change it
                    leaf = points.requires_grad_(True)
                    out = model(points.clone())
                else:
                    first, layers = split
                    with torch.no_grad():
                        leaf = first(points)
                    out = leaf.requires_grad_(True)
                    if type(layers[0]) not in NHWC_SAFE or getattr(layers[0], "inplace", False):
                        out = out.clone()  # a non-leaf copy, which an in-place second layer may change
                    for layer in layers:
                        out = layer(out)
                value = selected(out, t[img], output)
                (grad,) = torch.autograd.grad(value.sum(), leaf)
            if total is None:  # the weighted sum, kept in the layout the gradients come in
                nhwc = grad.ndim == 4 and not grad.is_contiguous() and grad.is_contiguous(
                    memory_format=torch.channels_last)
                grad_layout = torch.channels_last if nhwc else torch.contiguous_format
                total = torch.empty((n, *grad.shape[1:]), dtype=grad.dtype, device=grad.device,
                                    memory_format=grad_layout).zero_()
                total_rows = _rows(total)
            mix = torch.zeros((n, len(r)), dtype=grad.dtype, device=grad.device)  # mix[i, j]: row j's weight for i
            mix[img, torch.arange(len(r), device=grad.device)] = weight_t[step]
            total_rows.addmm_(mix, _rows(grad.contiguous(memory_format=grad_layout)))
        if split is not None:  # Σ_i w_i ∂f/∂x(p_i) = (∂ first / ∂x)ᵀ Σ_i w_i ∂f/∂first(p_i): one pull-back
            with torch.enable_grad():
                probe = torch.zeros_like(xl).requires_grad_(True)
                (total,) = torch.autograd.grad(split[0](probe), probe, total)
    attributions = (total * diff).contiguous()
    delta = attributions.double().flatten(1).sum(1) - (f[:n] - f[n:])
    return IGResult(to_numpy(attributions), to_numpy(delta))
