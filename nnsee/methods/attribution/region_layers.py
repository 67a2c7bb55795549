"""The layers whose outputs change only near a changed input region, and the clean activations the occluded
crops are laid over (the pieces of :mod:`.occlusion_region`).

Local layers: ``Conv2d`` (zero padding, integer or ``"valid"`` padding), ``MaxPool2d`` / ``AvgPool2d`` (no
``ceil_mode``, no ``return_indices``; average pooling with padding only when ``count_include_pad``), and pointwise
modules (activations, ``Dropout``, ``Identity``, ``BatchNorm2d`` with running statistics, in eval mode). Every kind
is accepted only when it runs that kind's own code: ``type(m).forward is Kind.forward`` (and ``_conv_forward`` for
convolutions, and no ``__call__`` override), so a subclass overriding ``forward`` (a "pointwise" layer that
subtracts the spatial mean) is not local; subclasses that override only other methods (a batch norm's
``_check_input_dim``) stay local.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

_POINTWISE = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU, nn.Mish,
              nn.Tanh, nn.Sigmoid, nn.Hardtanh, nn.Hardswish, nn.Hardsigmoid, nn.Softplus, nn.Softsign,
              nn.Tanhshrink, nn.LogSigmoid, nn.Identity, nn.Dropout, nn.Dropout2d, nn.AlphaDropout,
              nn.BatchNorm2d)


@dataclass(frozen=True)
class WindowLayer:
    """A conv or pool: ``apply(padded_crop)`` with no padding; kernel/stride/padding/dilation per axis (y, x)."""

    apply: Callable[[torch.Tensor], torch.Tensor]
    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    dilation: tuple[int, int]
    pad_value: float

    def reach(self, axis: int) -> int:
        """``d (k − 1)``: how far one output looks beyond its first input along ``axis``."""
        return self.dilation[axis] * (self.kernel[axis] - 1)

    def pad(self, a: torch.Tensor) -> torch.Tensor:
        py, px = self.padding
        return F.pad(a, (px, px, py, py), value=self.pad_value) if py or px else a


def _pair(v: int | tuple[int, ...]) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))


def window_layer(m: nn.Module) -> WindowLayer | None:
    """The module as a :class:`WindowLayer`, or None when it is not one this plan can crop."""
    if not plain_call(m):
        return None
    if (isinstance(m, nn.Conv2d) and type(m).forward is nn.Conv2d.forward
            and type(m)._conv_forward is nn.Conv2d._conv_forward):
        if m.padding_mode != "zeros" or (isinstance(m.padding, str) and m.padding != "valid"):
            return None
        padding = (0, 0) if isinstance(m.padding, str) else _pair(m.padding)
        stride, dilation, groups = _pair(m.stride), _pair(m.dilation), m.groups

        def conv(t: torch.Tensor, m: nn.Conv2d = m) -> torch.Tensor:
            return F.conv2d(t, m.weight, m.bias, stride, 0, dilation, groups)

        return WindowLayer(conv, _pair(m.kernel_size), stride, padding, dilation, 0.0)
    if isinstance(m, nn.MaxPool2d) and type(m).forward is nn.MaxPool2d.forward:
        if m.ceil_mode or m.return_indices:
            return None
        k, s, d = _pair(m.kernel_size), _pair(m.stride or m.kernel_size), _pair(m.dilation)
        return WindowLayer(lambda t: _max_pool(t, k, s, d), k, s, _pair(m.padding), d, -math.inf)
    if isinstance(m, nn.AvgPool2d) and type(m).forward is nn.AvgPool2d.forward:
        p = _pair(m.padding)
        if m.ceil_mode or (any(p) and not m.count_include_pad):
            return None
        k, s, div = _pair(m.kernel_size), _pair(m.stride or m.kernel_size), m.divisor_override
        return WindowLayer(lambda t: F.avg_pool2d(t, k, s, 0, divisor_override=div), k, s, p, (1, 1), 0.0)
    return None


def _max_pool(t: torch.Tensor, k: tuple[int, int], s: tuple[int, int], d: tuple[int, int]) -> torch.Tensor:
    """Max pooling without padding as the maximum of the ``k_h · k_w`` strided slices (the same values as
    ``F.max_pool2d``; several times faster on CPU for the small crops here, which it gets in NCHW layout)."""
    oh, ow = (t.shape[2] - d[0] * (k[0] - 1) - 1) // s[0] + 1, (t.shape[3] - d[1] * (k[1] - 1) - 1) // s[1] + 1
    out = None
    for i in range(k[0]):
        for j in range(k[1]):
            y, x = i * d[0], j * d[1]
            part = t[:, :, y: y + (oh - 1) * s[0] + 1: s[0], x: x + (ow - 1) * s[1] + 1: s[1]]
            out = part.clone() if out is None else torch.maximum(out, part, out=out)
    return out


def pointwise(m: nn.Module) -> bool:
    """Whether ``m`` maps each element on its own in eval mode: a pointwise kind running that kind's own ``forward``
    (a subclass overriding it may mix elements, e.g. subtract a mean), batch norm only with running statistics."""
    if not any(isinstance(m, kind) and type(m).forward is kind.forward for kind in _POINTWISE):
        return False
    return plain_call(m) and not (isinstance(m, nn.BatchNorm2d) and not m.track_running_stats)


def plain_call(m: nn.Module) -> bool:
    """Whether calling ``m`` runs ``nn.Module``'s own call machinery (hence ``m.forward``), not an override."""
    return type(m).__call__ is nn.Module.__call__ and type(m)._call_impl is nn.Module._call_impl


def hooked(m: nn.Module) -> bool:
    """Whether ``m`` has forward hooks (they would see crops, or be skipped by the functional form)."""
    return bool(m._forward_hooks or m._forward_pre_hooks)


def global_hooks() -> bool:
    from torch.nn.modules import module

    return bool(module._global_forward_hooks or module._global_forward_pre_hooks)


def extents(step: WindowLayer, h: int, w: int, oh: int, ow: int) -> tuple[int, int, int, int]:
    """``(L'_h, L'_w, inputs_h, inputs_w)``: the output crop for an input crop ``h × w`` (outputs ``oh × ow``) and
    the input window it reads, ``(L' − 1) s + d (k − 1) + 1`` per axis."""
    lh = min(oh, (h - 1 + step.reach(0)) // step.stride[0] + 1)
    lw = min(ow, (w - 1 + step.reach(1)) // step.stride[1] + 1)
    return lh, lw, (lh - 1) * step.stride[0] + step.reach(0) + 1, (lw - 1) * step.stride[1] + step.reach(1) + 1


class Source:
    """One local layer's clean input as rows ``(N·H·W, C)`` (channels last), followed by room for the crops.

    :meth:`windows` gathers every copy's input window in one ``index_select`` over the rows: each window element's
    index points into the copy's crop where the crop covers it and into the clean image elsewhere. The result is a
    (B, C, h, w) tensor in channels-last memory format, which the convolutions take as it is.
    """

    def __init__(self, clean: torch.Tensor, pad: tuple[int, int] = (0, 0), pad_value: float = 0.0) -> None:
        """``clean`` (N, C, H, W) padded by ``pad`` = (rows, columns) on each side with ``pad_value``; always a copy,
        so later in-place layers cannot change it. Coordinates given to :meth:`windows` are in the padded frame."""
        py, px = pad
        self.pad = pad
        if py or px:
            clean = F.pad(clean, (px, px, py, py), value=pad_value)
        self.n, self.c, self.height, self.width = clean.shape
        self.clean_rows = self.n * self.height * self.width
        self.rows = torch.empty(self.clean_rows, self.c, dtype=clean.dtype, device=clean.device)
        self.rows.view(self.n, self.height, self.width, self.c).copy_(clean.permute(0, 2, 3, 1))

    @property
    def elements(self) -> int:
        return self.clean_rows * self.c

    def windows(self, img: torch.Tensor, y: torch.Tensor, x: torch.Tensor, h: int, w: int, crop: torch.Tensor,
                cy: torch.Tensor, cx: torch.Tensor) -> torch.Tensor:
        """``clean[img_b, :, y_b : y_b + h, x_b : x_b + w]`` with ``crop[b]`` (B, C, h', w') laid over it at
        ``(cy_b, cx_b)`` (the part of the crop that falls inside the window)."""
        (b, _, ch, cw), device = crop.shape, crop.device
        need = self.clean_rows + b * ch * cw
        if len(self.rows) < need:  # grow the room for crops (kept for the next chunks)
            grown = torch.empty(need, self.c, dtype=self.rows.dtype, device=device)
            grown[: self.clean_rows] = self.rows[: self.clean_rows]
            self.rows = grown
        self.rows[self.clean_rows: need].view(b, ch, cw, self.c).copy_(crop.permute(0, 2, 3, 1))
        rows = y[:, None] + torch.arange(h, device=device)
        cols = x[:, None] + torch.arange(w, device=device)
        index = img[:, None, None] * (self.height * self.width) + rows[:, :, None] * self.width + cols[:, None, :]
        crow, ccol = rows - cy[:, None], cols - cx[:, None]  # the crop's row (column) at each window row (column)
        inside = ((crow >= 0) & (crow < ch))[:, :, None] & ((ccol >= 0) & (ccol < cw))[:, None, :]
        at_crop = (self.clean_rows + torch.arange(b, device=device)[:, None, None] * (ch * cw)
                   + crow.clamp(0, ch - 1)[:, :, None] * cw + ccol.clamp(0, cw - 1)[:, None, :])
        picked = self.rows.index_select(0, torch.where(inside, at_crop, index).view(-1))
        return picked.view(b, h, w, self.c).permute(0, 3, 1, 2)


