"""What an attribution explains: one output of the model per input, as a logit or as a softmax probability.

Every method takes ``target`` (a class index, or one per input) and ``output`` (``"logit"`` — the raw score,
Captum's default — or ``"softmax"`` — the probability ``softmax(model(x))[target]``), chosen explicitly.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from nnsee.errors import not_one_of
from nnsee.methods.base import MethodError
from nnsee.models.hooks import eval_mode

OUTPUTS = ("logit", "softmax")
#: The longest run of digits :func:`parse_index` reads (Python refuses ``int`` of more than 4,300 digits anyway).
MAX_INDEX_DIGITS = 100


def parse_index(text: str) -> int | None:
    """The whole number ``text`` spells in ASCII digits ``0-9`` only (surrounding spaces allowed), else None.

    ``str.isdigit`` is true for ``'²'`` (``int`` refuses it) and ``'٣'`` (``int`` reads 3), and ``int`` also reads
    ``'+3'``, ``'3_0'`` and ``'-1'``: an index, a count or a channel given by a person is ASCII digits or nothing.
    """
    digits = text.strip()
    if not digits or len(digits) > MAX_INDEX_DIGITS or not digits.isascii() or not digits.isdigit():
        return None
    return int(digits)


def as_input(x: np.ndarray | torch.Tensor, model: nn.Module) -> torch.Tensor:
    """A float tensor (N, C, H, W) on the model's device and dtype (a single (C, H, W) image gets N = 1), detached,
    and never sharing memory with ``x``: a model that works in place on its input (``nn.ReLU(inplace=True)`` first)
    changes this tensor, not the caller's tensor or array (a copy is made only where no conversion made one)."""
    param = next(model.parameters(), None)
    source = x.detach() if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))
    t = source[None] if source.ndim == 3 else source
    if t.ndim != 4:
        raise MethodError(f"expected images of shape (N, C, H, W) or (C, H, W), got {tuple(t.shape)}")
    if param is not None:
        t = t.to(device=param.device, dtype=param.dtype)
    if t.device == source.device and t.untyped_storage().data_ptr() == source.untyped_storage().data_ptr():
        t = t.clone()
    return t


def target_index(target: int | Sequence[int] | np.ndarray | torch.Tensor, n: int, n_outputs: int,
                 device: torch.device | None = None) -> torch.Tensor:
    """``target`` as a long tensor (n,), checked against the number of outputs."""
    t = torch.as_tensor(np.asarray(target), dtype=torch.long, device=device).reshape(-1)
    if t.numel() == 1:
        t = t.expand(n)
    if t.numel() != n:
        raise MethodError(f"got {t.numel()} targets for {n} inputs: give one class index, or one per input")
    if (t < 0).any() or (t >= n_outputs).any():
        raise MethodError(f"target class indices must lie in 0..{n_outputs - 1}, got {t.tolist()}")
    return t


def selected(outputs: torch.Tensor, target: torch.Tensor, output: str) -> torch.Tensor:
    """``outputs[i, target[i]]`` (logit) or ``softmax(outputs)[i, target[i]]`` (softmax), shape (n,)."""
    if output not in OUTPUTS:
        raise MethodError(not_one_of("output", output, OUTPUTS))
    if outputs.ndim != 2:
        raise MethodError(f"the model must return scores of shape (N, classes), got {tuple(outputs.shape)}")
    scores = outputs.softmax(dim=1) if output == "softmax" else outputs
    return scores.gather(1, target[:, None])[:, 0]


def gradient(model: nn.Module, x: torch.Tensor, target: int | Sequence[int] | np.ndarray | torch.Tensor,
             output: str = "logit") -> tuple[torch.Tensor, torch.Tensor]:
    """``(∂ f_target(x) / ∂x, f_target(x))`` for a batch, in eval mode; the model's training flag is restored.

    Inputs are independent, so one backward pass of ``Σ_i f_{target_i}(x_i)`` gives every input's gradient. The
    model runs on a copy of ``x`` (a leaf that requires grad may not enter an in-place op, and ``x`` is kept).
    """
    x = x.detach().requires_grad_(True)
    with eval_mode(model, grad=True):
        out = model(x.clone())  # a non-leaf copy: an in-place first layer changes it, and ∂/∂x stays defined
        t = target_index(target, len(x), out.shape[1] if out.ndim == 2 else 0, out.device)
        value = selected(out, t, output)
        (grad,) = torch.autograd.grad(value.sum(), x)
    return grad, value.detach()
