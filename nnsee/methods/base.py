"""Shared machinery of the ways of seeing: errors, evaluation mode, batching, hooks, and the dense-chain reader.

Every method takes a ``torch.nn.Module`` and returns numpy arrays on the CPU; none draws. Models are evaluated in
``torch.no_grad()`` and eval mode, on their own device and dtype, and get their ``training`` flag back afterwards.

Methods that read weights (templates, unit cards, contributions) apply to *fully connected chains*, read by
:func:`nnsee.models.dense_chain.dense_stages` (re-exported here), which raises :class:`MethodError` otherwise.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass

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

# ------------------------------------------------------------------------------------------------- evaluation


@contextmanager
def evaluating(model: nn.Module) -> Iterator[nn.Module]:
    """``with evaluating(model):`` eval mode and ``torch.no_grad()``; the training flag is restored after."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield model
    finally:
        model.train(was_training)


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


def batches(x: np.ndarray | torch.Tensor, batch_size: int) -> Iterator[tuple[int, np.ndarray | torch.Tensor]]:
    """``(start, x[start:start + batch_size])`` over the first axis."""
    if batch_size < 1:
        raise MethodError(f"batch_size must be at least 1, got {batch_size}")
    for start in range(0, len(x), batch_size):
        yield start, x[start : start + batch_size]


def to_numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy()


# ------------------------------------------------------------------------------------------------------ hooks


def get_module(model: nn.Module, name: str) -> nn.Module:
    """The submodule called ``name`` in ``model.named_modules()`` (dotted), or a MethodError listing the names."""
    modules = dict(model.named_modules())
    if name not in modules or name == "":
        names = ", ".join(n for n in modules if n) or "none"
        raise MethodError(f"the model has no layer {name!r}; its layers are: {names}")
    return modules[name]


@dataclass
class Captured:
    """What :func:`capture` saw: the layer's output on the latest forward pass (None before any)."""

    output: torch.Tensor | None = None
    calls: int = 0


@contextmanager
def capture(model: nn.Module, layer_name: str) -> Iterator[Captured]:
    """``with capture(model, "fc1") as seen: model(x)`` leaves ``seen.output``; the hook is always removed."""
    box = Captured()

    def hook(_module: nn.Module, _inputs: object, output: torch.Tensor) -> None:
        box.output = output.detach()
        box.calls += 1

    handle = get_module(model, layer_name).register_forward_hook(hook)
    try:
        yield box
    finally:
        handle.remove()


class _Stop(Exception):
    """Raised by :func:`layer_reader`'s hook to end the forward pass after the layer's last call."""


@contextmanager
def layer_reader(model: nn.Module, layer: str) -> Iterator[Callable[[torch.Tensor], torch.Tensor]]:
    """``with layer_reader(model, "conv2") as read: a = read(x)``: the output of ``layer`` at its **last** call in the
    forward pass, the rule of every nnsee method for a layer called more than once (Captum's: its layer and neuron
    methods keep the last call's output).

    The first read runs the whole forward pass and counts the layer's calls, ``k``; later reads of the block stop
    the forward pass right after the ``k``-th call (nothing after it is computed), so they must call the layer as
    often as the first (the same model; a later pass with fewer calls still gives its last). The hook is always
    removed; the output is returned as the layer gave it (with its autograd graph when gradients are on).
    """
    module = get_module(model, layer)
    box: dict[str, torch.Tensor] = {}
    count = {"calls": 0, "per_pass": 0}

    def hook(_m: nn.Module, _i: object, out: object) -> None:
        if not isinstance(out, torch.Tensor):
            raise MethodError(f"layer {layer!r} returns a {type(out).__name__}, not one tensor")
        box["out"] = out
        count["calls"] += 1
        if count["calls"] == count["per_pass"]:
            raise _Stop

    def read(x: torch.Tensor) -> torch.Tensor:
        box.clear()
        count["calls"] = 0
        with suppress(_Stop):
            model(x)
        if "out" not in box:
            raise MethodError(f"layer {layer!r} was not called in the forward pass")
        count["per_pass"] = count["per_pass"] or count["calls"]
        return box.pop("out")

    handle = module.register_forward_hook(hook)
    try:
        yield read
    finally:
        handle.remove()


@contextmanager
def zero_units(model: nn.Module, layer_name: str, units: Sequence[int] | torch.Tensor) -> Iterator[None]:
    """While inside, the output of ``layer_name`` has the given units (last axis) set to 0; hook always removed."""
    index = torch.as_tensor(units, dtype=torch.long)

    def hook(_module: nn.Module, _inputs: object, output: torch.Tensor) -> torch.Tensor:
        output = output.clone()
        output[..., index.to(output.device)] = 0
        return output

    handle = get_module(model, layer_name).register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


def softmax(logits: np.ndarray) -> np.ndarray:
    """``p_k = exp(z_k − max z) / Σ_j exp(z_j − max z)`` over the last axis, computed in float64."""
    z = np.asarray(logits, dtype=np.float64)
    z = np.exp(z - z.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)
