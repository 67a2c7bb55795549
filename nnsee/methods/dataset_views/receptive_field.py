"""Receptive fields of a conv layer's units, computed from the chain of conv and pooling layers, and image crops.

Per axis, through a chain of layers with kernel ``k``, dilation ``d``, stride ``s`` and padding ``p`` (starting from
size 1, stride 1, offset 0): ``size += d(k−1)·jump``, ``offset −= p·jump``, ``jump *= s``. Unit ``(y, x)`` of the layer
then sees input rows ``offset_y + stride_y·y`` to ``… + size_y − 1`` (and likewise for columns); a negative offset
means the field reaches into the padding. Elementwise layers (activations, batch norm, dropout) do not change it.

The chain is read from one probe forward pass: every leaf module called before the layer, in call order, each of
which must take the previous one's output (so branching models such as ResNets are refused with a MethodError, as
are layers after a Linear, whose units see the whole image). Tests check the result against the support of the
gradient of a unit with respect to the input.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from nnsee.methods.base import ELEMENTWISE, MethodError, param_of
from nnsee.models.hooks import eval_mode, get_module, layer_reader, watch_leaves

_PASS_THROUGH = (*ELEMENTWISE, nn.BatchNorm2d, nn.Dropout2d, nn.LocalResponseNorm, nn.Identity)
_WINDOWED = (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)


@dataclass(frozen=True)
class ReceptiveField:
    """``size`` (h, w) of each unit's field, ``stride`` (h, w) between neighbouring units' fields, and ``offset``
    (y, x): the top-left input pixel of unit (0, 0)'s field."""

    size: tuple[int, int]
    stride: tuple[int, int]
    offset: tuple[int, int]

    def window(self, position: Sequence[int]) -> tuple[int, int, int, int]:
        """``(top, left, bottom, right)`` input rows/columns (end exclusive) seen by the unit at ``(y, x)``."""
        top = self.offset[0] + self.stride[0] * int(position[0])
        left = self.offset[1] + self.stride[1] * int(position[1])
        return top, left, top + self.size[0], left + self.size[1]


def _pair(v: int | Sequence[int]) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))


def _geometry(m: nn.Module) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int], tuple[int, int]]:
    """(kernel, stride, padding, dilation) of a conv or pooling module."""
    kernel, stride = _pair(m.kernel_size), _pair(m.stride if m.stride is not None else m.kernel_size)
    dilation = _pair(getattr(m, "dilation", 1))
    padding = m.padding
    if isinstance(padding, str):  # Conv2d "valid" / "same" (stride 1; "same" pads (k−1)//2 before)
        same = tuple(d * (k - 1) // 2 for k, d in zip(kernel, dilation, strict=True))
        padding = (0, 0) if padding == "valid" else same
    return kernel, stride, _pair(padding), dilation


def _chain(model: nn.Module, layer: str, input_shape: Sequence[int]) -> list[tuple[str, nn.Module]]:
    names = {id(m): n for n, m in model.named_modules()}
    calls: list[tuple[str, nn.Module, object, object]] = []

    def record(m: nn.Module, inputs: tuple, out: object) -> None:
        calls.append((names.get(id(m), "?"), m, inputs[0] if inputs else None, out))

    device, dtype = param_of(model)
    with eval_mode(model), watch_leaves(model, record), layer_reader(model, layer) as read:
        probe = torch.zeros(1, *input_shape, device=device, dtype=dtype)
        read(probe)  # the whole pass, counting the layer's calls
        calls.clear()
        read(probe)  # stopped after the layer's last call: the chain up to it
    target = get_module(model, layer)
    if not list(target.children()) and (not calls or calls[-1][1] is not target):
        raise MethodError(f"layer {layer!r} was not reached as a leaf of the forward pass")
    chain = []
    previous = None
    for name, m, inp, out in calls:
        if previous is not None and inp is not previous:
            raise MethodError(f"the receptive field of {layer!r} needs a plain chain of layers up to it, but {name!r} "
                              "does not take the previous layer's output (a branching model)")
        chain.append((name, m))
        previous = out
    return chain


def receptive_field(model: nn.Module, layer: str, input_shape: Sequence[int]) -> ReceptiveField:
    """The receptive field of the units of ``layer`` for inputs ``input_shape`` (C, H, W); see the module doc."""
    shape = tuple(int(d) for d in input_shape)
    if len(shape) != 3:
        raise MethodError(f"input_shape must be (C, H, W), got {shape}")
    size, jump, offset = [1, 1], [1, 1], [0, 0]
    for name, m in _chain(model, layer, shape):
        if isinstance(m, _WINDOWED):
            kernel, stride, padding, dilation = _geometry(m)
            for a in range(2):
                size[a] += dilation[a] * (kernel[a] - 1) * jump[a]
                offset[a] -= padding[a] * jump[a]
                jump[a] *= stride[a]
        elif not isinstance(m, _PASS_THROUGH):
            raise MethodError(f"cannot follow the receptive field through {name!r} ({type(m).__name__}): it applies to "
                              "chains of Conv2d, MaxPool2d, AvgPool2d and elementwise layers")
    return ReceptiveField((size[0], size[1]), (jump[0], jump[1]), (offset[0], offset[1]))


def whole_image(input_shape: Sequence[int]) -> ReceptiveField:
    """A field that is the whole input for every unit: what a branching model (a ResNet's residual adds) gets, whose
    units' fields :func:`receptive_field` cannot follow; crops are then the whole image."""
    h, w = (int(d) for d in input_shape[-2:])
    return ReceptiveField((h, w), (0, 0), (0, 0))


def crop(image: np.ndarray, position: Sequence[int], rf: ReceptiveField, fill: float = 0.0) -> np.ndarray:
    """The patch (C, size_h, size_w) of ``image`` (C, H, W) seen by the unit at ``position`` (y, x); parts of the
    field outside the image (the padding) are ``fill``."""
    image = np.asarray(image)
    top, left, bottom, right = rf.window(position)
    c, h, w = image.shape
    patch = np.full((c, bottom - top, right - left), fill, dtype=image.dtype)
    y0, x0, y1, x1 = max(top, 0), max(left, 0), min(bottom, h), min(right, w)
    if y1 > y0 and x1 > x0:
        patch[:, y0 - top : y1 - top, x0 - left : x1 - left] = image[:, y0:y1, x0:x1]
    return patch
