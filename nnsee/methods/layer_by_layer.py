"""Layer by layer for one input (as CNN Explainer shows it): every layer's output in forward order, then the logits
and the probabilities.

One forward pass of one standardized image x through any ``nn.Module``; after each call of each leaf module (a module
without children: a convolution, an activation, a pooling, a Linear), its output ``a_l = f_l(inputs)`` is kept, in
call order (a module called twice appears twice, its second call named ``name#2``). The logits are the model's own
output ``z = model(x)``, and ``p = softmax(z)`` (float64). Operations that are not modules (``x + shortcut``,
``torch.flatten``) show up only through the next module's output.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from nnsee.methods.base import MethodError, evaluating, resolve_input_shape, softmax, to_batch, to_numpy
from nnsee.models.hooks import watch_leaves


@dataclass(frozen=True)
class LayerOutput:
    """One leaf module's output for the image: ``values`` has ``shape`` (the batch axis dropped)."""

    name: str  # dotted name in model.named_modules() (``name#2`` for its second call)
    kind: str  # the module's type, e.g. Conv2d
    shape: tuple[int, ...]
    values: np.ndarray


@dataclass(frozen=True)
class LayerByLayer:
    """The input (C, H, W), every leaf module's output in forward order, the logits (K,) and probabilities (K,)."""

    input: np.ndarray
    layers: list[LayerOutput]
    logits: np.ndarray
    probabilities: np.ndarray


def layer_by_layer(model: nn.Module, image_std: np.ndarray, input_shape: Sequence[int] | None = None) -> LayerByLayer:
    """Every layer's output for one standardized image ``image_std`` ((C, H, W) or (1, C, H, W); ``input_shape``
    defaults to the image's own shape), in eval mode, without gradients, on the model's device and dtype."""
    arr = np.asarray(image_std)
    if input_shape is None:
        if arr.ndim == 4 and arr.shape[0] == 1:
            arr = arr[0]
        shape = tuple(arr.shape) if arr.ndim == 3 else resolve_input_shape(model, None)
    else:
        shape = resolve_input_shape(model, input_shape)
    x = to_batch(arr, shape, model)
    if len(x) != 1:
        raise MethodError(f"layer by layer shows one image, got a batch of {len(x)}; pass one image (C, H, W)")
    names = {id(m): n for n, m in model.named_modules()}
    calls: dict[str, int] = {}
    layers: list[LayerOutput] = []

    def keep(module: nn.Module, _inputs: object, out: object) -> None:
        if not isinstance(out, torch.Tensor) or out.ndim < 1 or out.shape[0] != 1:
            return
        name = names.get(id(module), "") or type(module).__name__
        calls[name] = calls.get(name, 0) + 1
        shown = name if calls[name] == 1 else f"{name}#{calls[name]}"
        values = to_numpy(out[0]).copy()  # a copy now: an in-place op later (ReLU(inplace=True)) must not change it
        layers.append(LayerOutput(shown, type(module).__name__, tuple(values.shape), values))

    with evaluating(model), watch_leaves(model, keep):
        logits = model(x)
    if not isinstance(logits, torch.Tensor) or logits.ndim != 2 or len(logits) != 1:
        raise MethodError(f"layer by layer needs a model that returns logits (1, K) for one image, got "
                          f"{type(logits).__name__} {tuple(getattr(logits, 'shape', ()))}")
    z = to_numpy(logits[0]).copy()
    return LayerByLayer(to_numpy(x[0]).copy(), layers, z, softmax(z))
