"""The dense-chain reader: a model as ``flatten → (Linear, act…) × L``, the shape weight-reading views need.

A *fully connected chain* is an ``nn.Sequential`` (nested ones are read through) of ``Flatten``, then ``Linear``
layers with elementwise activations between them, the last ``Linear`` giving the logits. nnsee's ``softmax`` and
``mlp`` models are such chains. :func:`dense_stages` reads one, or raises :class:`MethodError` saying which models a
view applies to.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from math import prod

import torch
from torch import nn

from nnsee.errors import MethodError

DENSE_MODELS = (
    "fully connected nn.Sequential models (Flatten, Linear layers, elementwise activations: nnsee's softmax and mlp)"
)
ELEMENTWISE: tuple[type[nn.Module], ...] = (
    nn.Tanh, nn.ReLU, nn.Sigmoid, nn.LeakyReLU, nn.ELU, nn.CELU, nn.SELU, nn.GELU, nn.SiLU, nn.Mish, nn.Softplus,
    nn.Softsign, nn.Hardtanh, nn.ReLU6, nn.Hardsigmoid, nn.Hardswish, nn.Tanhshrink, nn.PReLU, nn.Identity,
    nn.Dropout,  # identity in eval mode, which is how methods evaluate
)


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
