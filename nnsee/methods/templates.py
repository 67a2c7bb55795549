"""Class templates ("Visualizing the W's") and effective templates through hidden layers.

For softmax regression ``z = W x + b`` with ``W`` of shape (K, D), class k's score is the dot product of the image
with row ``W[k]``: that row, reshaped to the image's shape (C, H, W), is class k's *template*.

For a chain with hidden layers, ``effective_templates`` multiplies the weight matrices and ignores the
nonlinearities: ``W_eff = W_L ⋯ W_2 W_1`` (torch's (out, in) layout), row k reshaped. For one hidden layer,
``W_eff[k] = W_1ᵀ W_out[k] = Σ_j W_out[k, j] W_1[j]``: the sum of the hidden units' images weighted by their
outgoing weight to class k, which is the issue's ``W0 @ W1[:, k]`` with ``W0`` (D, U) and ``W1`` (U, K) in
``x @ W`` layout. It is a linearisation, exact only if every activation were the identity.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from torch import nn

from nnsee.methods.base import MethodError, dense_stages, evaluating, resolve_input_shape, to_numpy


def class_templates(model: nn.Module, input_shape: Sequence[int] | None = None) -> np.ndarray:
    """``W[k]`` reshaped to ``(K, *input_shape)``, for a model whose only Linear maps pixels to classes.

    ``input_shape`` defaults to the model's spec. Raises MethodError for models with hidden layers.
    """
    shape = resolve_input_shape(model, input_shape)
    stages = dense_stages(model, shape, "class templates")
    if len(stages) != 1:
        raise MethodError(
            f"class templates apply to softmax regression (one Linear from pixels to classes); this model has "
            f"{len(stages) - 1} hidden layer(s) ({', '.join(s.name for s in stages[:-1])}). Use "
            "effective_templates(model) for the linearised template through the hidden layers, or "
            "incoming_weights(model) for the hidden units' images"
        )
    with evaluating(model):
        w = stages[0].linear.weight
        return to_numpy(w).reshape(w.shape[0], *shape).copy()


def effective_linear(model: nn.Module, input_shape: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(W_eff, b_eff)`` of the chain with every activation replaced by the identity.

    ``W_eff = W_L ⋯ W_1`` (K, D) and ``b_eff = b_L + W_L b_{L−1} + … + W_L ⋯ W_2 b_1`` (K,), computed in float64
    and returned in the model's dtype: the linear model ``z ≈ W_eff x + b_eff``.
    """
    stages = dense_stages(model, input_shape, "effective templates")
    with evaluating(model):
        w = stages[0].linear.weight.double()
        b = stages[0].linear.bias.double() if stages[0].linear.bias is not None else w.new_zeros(w.shape[0])
        for stage in stages[1:]:
            wi = stage.linear.weight.double()
            w = wi @ w
            b = wi @ b + (stage.linear.bias.double() if stage.linear.bias is not None else 0.0)
        dtype = stages[-1].linear.weight.dtype
        return to_numpy(w.to(dtype)), to_numpy(b.to(dtype))


def effective_templates(model: nn.Module, input_shape: Sequence[int] | None = None) -> np.ndarray:
    """``(W_L ⋯ W_2 W_1)[k]`` reshaped to ``(K, *input_shape)`` (module docstring: a linearisation).

    For softmax regression it equals :func:`class_templates`.
    """
    shape = resolve_input_shape(model, input_shape)
    w, _ = effective_linear(model, shape)
    return w.reshape(w.shape[0], *shape)
