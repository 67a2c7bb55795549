"""Why this score (the dot-product slide): how one input's score for each class is built.

Linear model: ``z_k = W_k · x + b_k = Σ_i x_i W_k,i + b_k``. The contribution map of class k is ``x ⊙ W_k``
(shape of the image); its sum plus the bias is the logit, exactly up to float rounding.

One-hidden-layer MLP: ``h = act(W_1 x + b_1)``, ``z_k = Σ_j W_out[k, j] h_j + b_out[k]``. Unit j's *vote* for class
k is ``W_out[k, j] · h_j``; the votes of a class sum, with its bias, to its logit. How unit j came to fire is its
own dot product: ``x ⊙ W_1[j]`` sums, with ``b_1[j]``, to its pre-activation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from nnsee.errors import not_one_of
from nnsee.methods.base import (
    MethodError,
    dense_stages,
    evaluating,
    resolve_input_shape,
    softmax,
    to_batch,
    to_numpy,
)

RANKINGS = ("vote", "activation")


@dataclass
class LinearExplanation:
    """One input through ``z = W x + b``: ``contribution_sum + bias == logits`` (up to rounding)."""

    logits: np.ndarray  # (K,) the model's output
    probabilities: np.ndarray  # (K,) softmax(logits)
    bias: np.ndarray  # (K,)
    contributions: np.ndarray  # (K, C, H, W) x ⊙ W_k
    contribution_sum: np.ndarray  # (K,) Σ_i x_i W_k,i (accumulated in float64)

    @property
    def predicted(self) -> int:
        return int(np.argmax(self.logits))


@dataclass
class MLPExplanation:
    """One input through a one-hidden-layer MLP: ``contribution_sum + out_bias == logits`` (up to rounding)."""

    logits: np.ndarray  # (K,)
    probabilities: np.ndarray  # (K,)
    out_bias: np.ndarray  # (K,) b_out
    hidden: np.ndarray  # (U,) activations h_j
    pre_activation: np.ndarray  # (U,) W_1[j] · x + b_1[j]
    hidden_bias: np.ndarray  # (U,) b_1
    votes: np.ndarray  # (K, U) W_out[k, j] · h_j
    contribution_sum: np.ndarray  # (K,) Σ_j votes[k, j] (accumulated in float64)
    top_units: np.ndarray  # (m,) the units explained pixel by pixel, most important first
    pixel_contributions: np.ndarray  # (m, C, H, W) x ⊙ W_1[j] for j in top_units
    pixel_sums: np.ndarray  # (m,) Σ_i x_i W_1[j, i]; plus hidden_bias[j] it is pre_activation[j]

    @property
    def predicted(self) -> int:
        return int(np.argmax(self.logits))


def _one_image(model: nn.Module, x_std: np.ndarray | torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    x = to_batch(x_std, shape, model)
    if len(x) != 1:
        raise MethodError(f"explain one image at a time: expected shape {shape}, got a batch of {len(x)}")
    return x


def _sum64(t: torch.Tensor) -> np.ndarray:
    return to_numpy(t.double().sum(-1).to(t.dtype))


def explain_linear(
    model: nn.Module, x_std: np.ndarray | torch.Tensor, input_shape: Sequence[int] | None = None
) -> LinearExplanation:
    """Contributions ``x ⊙ W_k`` of a standardized image ``x_std`` (C, H, W) for softmax regression."""
    shape = resolve_input_shape(model, input_shape)
    stages = dense_stages(model, shape, "the linear explanation")
    if len(stages) != 1:
        raise MethodError("explain_linear applies to softmax regression; this model has hidden layers: use "
                          "explain_mlp (one hidden layer) or explain(model, x)")
    lin = stages[0].linear
    x = _one_image(model, x_std, shape)
    with evaluating(model):
        logits = model(x)[0]
        contributions = lin.weight * x.flatten(1)  # (K, D)
        bias = lin.bias if lin.bias is not None else torch.zeros_like(logits)
        logits_np = to_numpy(logits)
        return LinearExplanation(
            logits=logits_np,
            probabilities=softmax(logits_np).astype(logits_np.dtype),
            bias=to_numpy(bias).copy(),
            contributions=to_numpy(contributions).reshape(len(contributions), *shape),
            contribution_sum=_sum64(contributions),
        )


def explain_mlp(
    model: nn.Module,
    x_std: np.ndarray | torch.Tensor,
    input_shape: Sequence[int] | None = None,
    top: int = 9,
    rank_by: str = "vote",
) -> MLPExplanation:
    """Hidden activations, votes ``W_out[k, j] · h_j`` and pixel maps of the top units, for a one-hidden-layer MLP.

    ``rank_by="vote"``: top units by their vote for the predicted class (largest first); ``"activation"``: by
    ``|h_j|``. Ties go to the lower unit. ``top`` is capped at U.
    """
    if rank_by not in RANKINGS:
        raise MethodError(not_one_of("rank_by", rank_by, RANKINGS))
    if top < 1:
        raise MethodError(f"top must be at least 1, got {top}")
    shape = resolve_input_shape(model, input_shape)
    stages = dense_stages(model, shape, "the MLP explanation")
    if len(stages) != 2:
        raise MethodError(
            f"explain_mlp applies to an MLP with one hidden layer; this model has {len(stages) - 1}"
            + (": use explain_linear" if len(stages) == 1 else "")
        )
    first, out = stages[0], stages[1].linear
    x = _one_image(model, x_std, shape)
    with evaluating(model):
        logits = model(x)[0]
        pixel_maps = first.linear.weight * x.flatten(1)  # (U, D)
        pre = first.linear(x.flatten(1))[0]
        hidden = first.forward(x.flatten(1))[0]
        votes = out.weight * hidden[None, :]  # (K, U)
        logits_np = to_numpy(logits)
        predicted = int(np.argmax(logits_np))
        key = votes[predicted] if rank_by == "vote" else hidden.abs()
        key_np = to_numpy(key).astype(np.float64)
        order = np.lexsort((np.arange(len(key_np)), -key_np))[:top]
        chosen = pixel_maps[torch.as_tensor(order, device=pixel_maps.device)]
        zeros = torch.zeros(len(hidden), dtype=hidden.dtype, device=hidden.device)
        return MLPExplanation(
            logits=logits_np,
            probabilities=softmax(logits_np).astype(logits_np.dtype),
            out_bias=to_numpy(out.bias if out.bias is not None else torch.zeros_like(logits)).copy(),
            hidden=to_numpy(hidden),
            pre_activation=to_numpy(pre),
            hidden_bias=to_numpy(first.linear.bias if first.linear.bias is not None else zeros).copy(),
            votes=to_numpy(votes),
            contribution_sum=_sum64(votes),
            top_units=order.astype(np.int64),
            pixel_contributions=to_numpy(chosen).reshape(len(order), *shape),
            pixel_sums=_sum64(chosen),
        )


def explain(
    model: nn.Module, x_std: np.ndarray | torch.Tensor, input_shape: Sequence[int] | None = None, **options: object
) -> LinearExplanation | MLPExplanation:
    """:func:`explain_linear` for softmax regression, :func:`explain_mlp` for a one-hidden-layer MLP.

    ``options`` (``top``, ``rank_by``) go to :func:`explain_mlp`. Other models: MethodError.
    """
    shape = resolve_input_shape(model, input_shape)
    stages = dense_stages(model, shape, "explain")
    if len(stages) == 1:
        return explain_linear(model, x_std, shape)
    if len(stages) == 2:
        return explain_mlp(model, x_std, shape, **options)  # type: ignore[arg-type]
    raise MethodError(
        f"explain applies to softmax regression and to MLPs with one hidden layer; this model has {len(stages) - 1} "
        "hidden layers"
    )
