"""Receptive fields of a conv layer's units, computed from the chain of conv and pooling layers, and image crops.

Per axis, through a chain of layers with kernel ``k``, dilation ``d``, stride ``s`` and padding ``p`` (starting from
size 1, stride 1, offset 0): ``size += d(k−1)·jump``, ``offset −= p·jump``, ``jump *= s``. Unit ``(y, x)`` of the layer
then sees input rows ``offset_y + stride_y·y`` to ``… + size_y − 1`` (and likewise for columns); a negative offset
means the field reaches into the padding. Elementwise layers (activations, batch norm, dropout) do not change it.

A branching model (a ResNet's residual adds, an Inception's concatenations) has no single chain: a unit's field is
then the *union* of the fields along every path to it, found by :func:`probed_field` from the support of a gradient
in a copy made monotone (every weight positive, BatchNorm the identity, max-pooling read as average pooling, an
input of ones: all activations are positive, so no ReLU cuts and no sum cancels a path). For ResNet-18 this gives
43, 99, 211 and 435 px at ``layer1..layer4`` (strides 4, 8, 16, 32), the published theoretical fields.
:func:`field_of` takes the chain's field where there is one, else the probed one, else the whole image, and says why.

The chain is read from one probe forward pass, on PyTorch's ``meta`` device where the model allows it (no
arithmetic), stopped after the layer's last call: every leaf module called before the layer, in call order, each of
which must take the previous one's output (so branching models such as ResNets are refused with a MethodError, as
are layers after a Linear, whose units see the whole image). Tests check the result against the support of the
gradient of a unit with respect to the input.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from nnsee.methods.base import ELEMENTWISE, MethodError, param_of
from nnsee.methods.dataset_views._stopped import layer_calls, stopped_pass
from nnsee.models.hooks import eval_mode, get_module, watch_leaves

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
    probe = torch.zeros(1, *input_shape, device=device, dtype=dtype)
    with eval_mode(model):
        seen = layer_calls(model, probe, [layer])
        for meta in (True, False):  # on the meta device (no arithmetic), else a real pass
            calls.clear()
            try:
                with watch_leaves(model, record), stopped_pass(model, seen.calls, layer, meta=meta) as run:
                    run(probe)  # stopped after the layer's last call: the chain up to it
                break
            except MethodError:
                raise
            except Exception:  # noqa: BLE001 - an op without a meta kernel: the real pass
                if not meta:
                    raise
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


_MAX_POOLS = ("max_pool2d", "_max_pool2d", "max_pool2d_with_indices")


def _monotone_copy(model: nn.Module) -> nn.Module:
    """A copy of ``model`` whose weights are positive (``1 / fan_in``), biases zero and BatchNorm the identity."""
    work = copy.deepcopy(model).eval()
    with torch.no_grad():
        for name, p in work.named_parameters():
            if name.rsplit(".", 1)[-1] == "bias":
                p.zero_()
            else:
                p.fill_(1.0 / max(1, p[0].numel()) if p.ndim > 1 else 1.0)
        for name, b in work.named_buffers():
            leaf = name.rsplit(".", 1)[-1]
            if leaf in ("running_mean", "running_var"):
                b.fill_(0.0 if leaf == "running_mean" else 1.0)
    return work


class _AveragePools(torch.overrides.TorchFunctionMode):
    """Reads every 2-D max-pooling as average pooling of the same window (its gradient reaches every pixel of the
    window, not only the largest)."""

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN204
        kwargs = dict(kwargs or {})
        if getattr(func, "__name__", "") in _MAX_POOLS:
            names = ("input", "kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices")
            given = {**dict(zip(names, args, strict=False)), **kwargs}
            if given.get("return_indices") or _pair(given.get("dilation", 1) or 1) != (1, 1):
                raise MethodError("a dilated max-pooling or one that returns indices")
            kernel = given["kernel_size"]
            return torch.nn.functional.avg_pool2d(given["input"], kernel, given.get("stride") or kernel,
                                                  given.get("padding", 0), bool(given.get("ceil_mode", False)))
        return func(*args, **kwargs)


def _supports(work: nn.Module, layer: str, side: tuple[int, int], channels: int,
              units: Sequence[tuple[int, int]] | None) -> tuple[tuple[int, int], list[tuple[int, int, int, int]]]:
    """The map size of ``layer`` for ``side`` (H, W) inputs and the support box (top, left, bottom, right) of the
    input gradient of each of ``units`` (default: the centre unit and its lower-right neighbour)."""
    device, dtype = param_of(work)
    x = torch.ones(2, channels, *side, device=device, dtype=dtype, requires_grad=True)
    box: dict[str, torch.Tensor] = {}
    with eval_mode(work):
        seen = layer_calls(work, x[:1].detach(), [layer])
    with (eval_mode(work, grad=True), _AveragePools(),
          stopped_pass(work, seen.calls, layer, lambda _n, out: box.__setitem__("a", out)) as run):
        run(x)  # stopped after the layer's last call: nothing past it is computed
        a = box["a"]
        if a.ndim != 4:
            raise MethodError(f"{layer!r} gives no feature maps")
        h, w = a.shape[-2:]
        cells = units or [(h // 2, w // 2), (min(h - 1, h // 2 + 1), min(w - 1, w // 2 + 1))]
        (a[0, :, cells[0][0], cells[0][1]].sum() + a[1, :, cells[1][0], cells[1][1]].sum()).backward()
    boxes = []
    for g in x.grad.abs().sum(1):
        rows, cols = torch.nonzero(g.sum(1)).flatten(), torch.nonzero(g.sum(0)).flatten()
        if len(rows) == 0:
            raise MethodError(f"no input pixel reaches {layer!r}")
        boxes.append((int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1))
    return (int(h), int(w)), boxes


def probed_field(model: nn.Module, layer: str, input_shape: Sequence[int], largest: int = 1024
                 ) -> ReceptiveField | None:
    """The field of ``layer``'s units as the union over every path (see the module doc), or None when it covers the
    whole ``input_shape`` image (C, H, W). Probed at the image size, then at 3x it when the centre unit's field
    touches a border; a field still touching one at ``largest`` px counts as covering the image.
    MethodError when the copy cannot be probed (no feature maps, a 1x1 map, a dilated max-pool)."""
    c, h, w = (int(d) for d in input_shape)
    work = _monotone_copy(model)
    side = (h, w)
    while True:
        (mh, mw), boxes = _supports(work, layer, side, c, None)
        (top, left, bottom, right), (top2, left2, _, _) = boxes
        touches = top == 0 or left == 0 or bottom == side[0] or right == side[1]
        if not touches:
            break
        if (top, left, bottom, right) == (0, 0, h, w) and side == (h, w):
            return None  # covers the whole image at its own size
        if 3 * max(side) > largest:
            return None
        side = (3 * side[0], 3 * side[1])
    if mh < 2 or mw < 2:
        raise MethodError(f"{layer!r} has a 1x1 map: neighbouring units cannot be compared")
    stride = (top2 - top, left2 - left)
    size = (bottom - top, right - left)
    if min(stride) < 1:
        raise MethodError(f"the fields of {layer!r} do not move with the unit")
    cy, cx = mh // 2, mw // 2
    field = ReceptiveField(size, stride, (top - cy * stride[0], left - cx * stride[1]))
    if size[0] >= h and size[1] >= w:
        return None
    return field


def field_of(model: nn.Module, layer: str, input_shape: Sequence[int]) -> tuple[ReceptiveField, str]:
    """``(field, how)``: the chain's field (:func:`receptive_field`), else the field probed through the branches
    (:func:`probed_field`), else the whole image; ``how`` says which, for people."""
    shape = tuple(int(d) for d in input_shape)
    try:
        rf = receptive_field(model, layer, shape)
        how = f"{rf.size[0]}x{rf.size[1]} px, from the chain of layers"
    except MethodError as chain_error:
        try:
            rf = probed_field(model, layer, shape)
        except (MethodError, RuntimeError, ValueError) as exc:  # a model that refuses other sizes or the copy
            return whole_image(shape), f"whole images: its receptive field cannot be found ({chain_error}; {exc})"
        if rf is None:
            return whole_image(shape), (f"whole images: the receptive field of {layer} (union over the residual "
                                        f"branches) covers the whole {shape[1]}x{shape[2]} image")
        how = f"{rf.size[0]}x{rf.size[1]} px, the union over every branch (residual adds included)"
    if rf.size[0] >= shape[1] and rf.size[1] >= shape[2]:
        return whole_image(shape), f"whole images: the receptive field of {layer} ({rf.size[0]} px) covers the image"
    return rf, how
