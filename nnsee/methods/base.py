"""Shared machinery of the ways of seeing: errors, evaluation mode, batching, hooks, and the dense-chain reader.

Every method takes a ``torch.nn.Module`` and returns numpy arrays on the CPU; none draws. Models are evaluated in
``torch.no_grad()`` and eval mode, on their own device and dtype, and get their ``training`` flag back afterwards.

Methods that read weights (templates, unit cards, contributions) apply to *fully connected chains*: an
``nn.Sequential`` (nested ones are read through) of ``Flatten``, then ``Linear`` layers with elementwise activations
between them, the last ``Linear`` giving the logits. nnsee's ``softmax`` and ``mlp`` models are such chains.
:func:`dense_stages` reads one, or raises :class:`MethodError` saying which models a method applies to.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from math import prod

import numpy as np
import torch
from torch import nn

from nnsee.errors import NnseeError

DENSE_MODELS = (
    "fully connected nn.Sequential models (Flatten, Linear layers, elementwise activations: nnsee's softmax and mlp)"
)
ELEMENTWISE: tuple[type[nn.Module], ...] = (
    nn.Tanh, nn.ReLU, nn.Sigmoid, nn.LeakyReLU, nn.ELU, nn.CELU, nn.SELU, nn.GELU, nn.SiLU, nn.Mish, nn.Softplus,
    nn.Softsign, nn.Hardtanh, nn.ReLU6, nn.Hardsigmoid, nn.Hardswish, nn.Tanhshrink, nn.PReLU, nn.Identity,
    nn.Dropout,  # identity in eval mode, which is how methods evaluate
)


class MethodError(NnseeError, ValueError):
    """A way of seeing does not apply to this model or these inputs (the message says what to use instead)."""


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


def resolve_input_shape(model: nn.Module, input_shape: Sequence[int] | None) -> tuple[int, ...]:
    """``input_shape`` as a tuple, or the model's ``nnsee_spec["input_shape"]`` when None."""
    if input_shape is None:
        input_shape = (getattr(model, "nnsee_spec", None) or {}).get("input_shape")
        if input_shape is None:
            raise MethodError(
                f"cannot tell the input shape of this {type(model).__name__}; pass input_shape=(C, H, W)"
            )
    shape = tuple(int(d) for d in input_shape)
    if not shape or any(d < 1 for d in shape):
        raise MethodError(f"input_shape must be positive sizes like (C, H, W), got {shape}")
    return shape


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


# ---------------------------------------------------------------------------------------------- dense chains


def linear_layers(model: nn.Module) -> list[tuple[str, nn.Linear]]:
    """The model's ``nn.Linear`` layers with their dotted names, in registration order.

    That is the forward order for ``nn.Sequential`` models (all of nnsee's); for other modules it is the order
    the layers were assigned in ``__init__``.
    """
    return [(name, m) for name, m in model.named_modules() if isinstance(m, nn.Linear)]


@dataclass(frozen=True)
class Stage:
    """One ``Linear`` of a dense chain and the elementwise modules right after it (none for the output layer).

    ``act_name`` is the dotted name of the last of those modules (whose output is the units' activation), or the
    Linear's own name when none follows.
    """

    name: str
    linear: nn.Linear
    activations: tuple[nn.Module, ...] = field(default=())
    act_name: str = ""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``act(W x + b)`` for flattened ``x`` (N, in_features)."""
        x = self.linear(x)
        for a in self.activations:
            x = a(x)
        return x


def _leaves(module: nn.Module, prefix: str = "") -> Iterator[tuple[str, nn.Module]]:
    for name, child in module.named_children():
        full = f"{prefix}.{name}" if prefix else name
        if isinstance(child, nn.Sequential):
            yield from _leaves(child, full)
        else:
            yield full, child


def dense_stages(model: nn.Module, input_shape: Sequence[int] | None = None, what: str = "this view") -> list[Stage]:
    """Read ``model`` as a dense chain ``flatten → (Linear, act…) × L``; raise MethodError if it is not one.

    ``what`` names the method in the error. With ``input_shape`` (or the model's spec), the first Linear must read
    exactly ``prod(input_shape)`` values.
    """
    def refuse(why: str) -> MethodError:
        return MethodError(f"{what} applies to {DENSE_MODELS}; {why}")

    if not isinstance(model, nn.Sequential):
        raise refuse(f"a {type(model).__name__} is not an nn.Sequential chain")
    stages: list[list] = []  # [name, linear, [activations], act_name]
    flattened = False
    for name, m in _leaves(model):
        if isinstance(m, nn.Flatten):
            if stages or m.start_dim != 1 or m.end_dim != -1:
                raise refuse(f"its {name!r} (Flatten) must come first and flatten every axis after the batch axis")
            flattened = True
        elif isinstance(m, nn.Linear):
            if not flattened:
                raise refuse(f"its first Linear {name!r} does not read a flattened image (no Flatten before it)")
            stages.append([name, m, [], name])
        elif isinstance(m, ELEMENTWISE) and not list(m.children()):
            if not stages:
                if isinstance(m, (nn.Identity, nn.Dropout)):
                    continue
                raise refuse(f"its {name!r} ({type(m).__name__}) acts on the pixels before the first Linear")
            if not isinstance(m, (nn.Identity, nn.Dropout)):
                stages[-1][2].append(m)
            stages[-1][3] = name
        else:
            raise refuse(f"it has {name!r} ({type(m).__name__})")
    if not stages:
        raise refuse("it has no Linear layer")
    if stages[-1][2]:
        raise refuse(f"its last Linear {stages[-1][0]!r} is followed by an activation; the last Linear must give "
                     "the logits")
    shape = None
    try:
        shape = resolve_input_shape(model, input_shape)
    except MethodError:
        if input_shape is not None:
            raise
    if shape is not None and stages[0][1].in_features != prod(shape):
        raise MethodError(
            f"{what}: the first Linear {stages[0][0]!r} reads {stages[0][1].in_features} values, but images of shape "
            f"{shape} have {prod(shape)}"
        )
    for prev, cur in zip(stages, stages[1:], strict=False):
        if cur[1].in_features != prev[1].out_features:
            raise refuse(f"{cur[0]!r} reads {cur[1].in_features} values but {prev[0]!r} gives {prev[1].out_features}")
    return [Stage(name, lin, tuple(acts), act_name) for name, lin, acts, act_name in stages]


def hidden_stage(stages: list[Stage], layer: str, what: str) -> int:
    """Index of the hidden layer ``layer`` (a Linear's dotted name, not the output layer) in ``stages``."""
    names = [s.name for s in stages]
    hidden = names[:-1]
    if layer == names[-1]:
        raise MethodError(f"{what}: {layer!r} is the output layer, whose units are the classes; "
                          f"pick a hidden layer ({', '.join(hidden) or 'this model has none: use class_templates'})")
    if layer not in hidden:
        raise MethodError(f"{what}: the model has no hidden layer {layer!r}; its hidden layers are: "
                          f"{', '.join(hidden) or 'none (softmax regression: use class_templates)'}")
    return names.index(layer)


def forward_to(stages: list[Stage], x: torch.Tensor, upto: int) -> torch.Tensor:
    """The activations after stage ``upto`` (0-based, inclusive) for a batch of images ``x`` (N, ...)."""
    h = x.flatten(1)
    for stage in stages[: upto + 1]:
        h = stage.forward(h)
    return h


def softmax(logits: np.ndarray) -> np.ndarray:
    """``p_k = exp(z_k − max z) / Σ_j exp(z_j − max z)`` over the last axis, computed in float64."""
    z = np.asarray(logits, dtype=np.float64)
    z = np.exp(z - z.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)
