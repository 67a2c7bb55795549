"""Shared machinery of the ways of seeing: errors, evaluation mode, batching, hooks, and the dense-chain reader.

Every method takes a ``torch.nn.Module`` and returns numpy arrays on the CPU; none draws. Models are evaluated in
``torch.no_grad()`` and eval mode, on their own device and dtype, and get their ``training`` flag back afterwards:
:func:`evaluating` and the hooks (:func:`capture`, :func:`layer_reader`, :func:`zero_units`, :func:`get_module`)
are those of :mod:`nnsee.models.hooks`, re-exported here.

Methods that read weights (templates, unit cards, contributions) apply to *fully connected chains*, read by
:func:`nnsee.models.dense_chain.dense_stages` (re-exported here), which raises :class:`MethodError` otherwise.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from nnsee.errors import MethodError
from nnsee.models.dense_chain import (  # noqa: F401  (the dense-chain reader, re-exported for the views)
    DENSE_MODELS,
    ELEMENTWISE,
    Stage,
    dense_stages,
    forward_to,
    hidden_stage,
    linear_layers,
    resolve_input_shape,
)
from nnsee.models.hooks import (  # noqa: F401  (the hook helpers, re-exported for the views)
    Captured,
    capture,
    eval_mode,
    get_module,
    layer_reader,
    zero_units,
)

evaluating = eval_mode  # ``with evaluating(model):`` eval mode and torch.no_grad(); every training flag restored


def param_of(model: nn.Module) -> tuple[torch.device, torch.dtype]:
    """The device and floating dtype of the model's parameters (CPU float32 for a model without any)."""
    for p in model.parameters():
        if p.is_floating_point():
            return p.device, p.dtype
    return torch.device("cpu"), torch.float32


def to_batch(x: np.ndarray | torch.Tensor, input_shape: Sequence[int], model: nn.Module | None = None) -> torch.Tensor:
    """One image ``input_shape`` or a batch ``(N, *input_shape)`` as an ``(N, *input_shape)`` tensor.

    With ``model``, the tensor is on the model's device and in its dtype.
    """
    shape = tuple(int(d) for d in input_shape)
    t = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x)
    if tuple(t.shape) == shape:
        t = t.unsqueeze(0)
    elif t.ndim != len(shape) + 1 or tuple(t.shape[1:]) != shape:
        raise MethodError(f"expected an image of shape {shape} or a batch (N, {', '.join(map(str, shape))}), got "
                          f"{tuple(t.shape)}")
    if model is not None:
        device, dtype = param_of(model)
        t = t.to(device=device, dtype=dtype)
    elif not t.is_floating_point():
        t = t.float()
    return t


def batches(x: np.ndarray | torch.Tensor, batch_size: int, transform: Callable[[np.ndarray], np.ndarray] | None = None
            ) -> Iterator[tuple[int, np.ndarray | torch.Tensor]]:
    """``(start, x[start:start + batch_size])`` over the first axis, after ``transform`` (e.g. a run's
    standardization) when given. ``x`` may be a streamed set (:class:`~nnsee.data.lazy.LazyImages`): each slice is
    decoded when reached, so neither the whole set nor a transformed copy of it is ever held."""
    if batch_size < 1:
        raise MethodError(f"batch_size must be at least 1, got {batch_size}")
    for start in range(0, len(x), batch_size):
        chunk = x[start : start + batch_size]
        yield start, chunk if transform is None else transform(np.asarray(chunk))


def to_numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy()


def softmax(logits: np.ndarray) -> np.ndarray:
    """``p_k = exp(z_k − max z) / Σ_j exp(z_j − max z)`` over the last axis, computed in float64."""
    z = np.asarray(logits, dtype=np.float64)
    z = np.exp(z - z.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


def at_each_snapshot(model: nn.Module, snapshots: Mapping[int, Mapping[str, torch.Tensor]]
                     ) -> Iterator[tuple[int, nn.Module]]:
    """``(epoch, copy)`` in epoch order: one copy of ``model`` holding each snapshot's weights in turn (loaded
    strictly); ``model`` itself is not modified. Nothing for no snapshots."""
    if not snapshots:
        return
    work = copy.deepcopy(model)
    for epoch in sorted(snapshots):
        work.load_state_dict(snapshots[epoch])
        yield int(epoch), work
