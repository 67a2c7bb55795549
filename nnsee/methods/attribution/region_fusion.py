"""Convolutions as the region engine runs them: weights kept once in the activations' channels-last layout (a
convolution given NHWC inputs and NCHW weights reorders the weights on every call), and an eval-mode batch norm
that is a convolution's only user folded into it:

    bn(conv(x)) = conv'(x),   W' = W · γ / √(σ² + ε) (per output channel),   b' = (b − μ) · γ / √(σ² + ε) + β

computed in float64 and rounded once to the weights' dtype. The clean pass and the copies run the same folded
convolutions, so the drops stay differences of identically computed scores (the maps equal full passes within
float rounding)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import torch
import torch.nn.functional as F  # noqa: N812
from torch import fx, nn

from nnsee.methods.attribution.region_layers import WindowLayer, hooked, plain_call, pointwise


def fused_convolutions(model: nn.Module, nodes: list[fx.Node], window: dict[str, WindowLayer]
                       ) -> tuple[dict[str, WindowLayer], dict[str, Callable[[torch.Tensor], torch.Tensor]], set[str]]:
    """``(layers, whole, folded)``: every plain convolution node's :class:`WindowLayer` (on padded crops) and its
    function on whole tensors (the layer's own padding), with channels-last (and, where a batch norm follows, folded)
    weights; ``folded`` the batch norm nodes that now pass their input through."""
    layers: dict[str, WindowLayer] = {}
    whole: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {}
    folded: set[str] = set()
    for node in nodes:
        step = window.get(node.name)
        if step is None or node.op != "call_module":
            continue
        conv = model.get_submodule(node.target)
        if not isinstance(conv, nn.Conv2d):
            continue
        weight, bias = conv.weight.detach(), None if conv.bias is None else conv.bias.detach()
        users = list(node.users)
        bn = model.get_submodule(users[0].target) if len(users) == 1 and users[0].op == "call_module" else None
        if isinstance(bn, nn.BatchNorm2d) and pointwise(bn) and plain_call(bn) and not hooked(bn) \
                and bn.running_mean is not None:  # the engine runs in eval mode: running statistics
            weight, bias = _fold(weight, bias, bn)
            folded.add(users[0].name)
        weight = weight.contiguous(memory_format=torch.channels_last)
        layers[node.name] = replace(step, apply=_conv(weight, bias, conv, (0, 0)))
        whole[node.name] = _conv(weight, bias, conv, step.padding)
    return layers, whole, folded


def _fold(weight: torch.Tensor, bias: torch.Tensor | None, bn: nn.BatchNorm2d
          ) -> tuple[torch.Tensor, torch.Tensor]:
    w64 = weight.double()
    scale = torch.ones_like(bn.running_var, dtype=torch.float64) if bn.weight is None else bn.weight.detach().double()
    scale = scale / torch.sqrt(bn.running_var.double() + bn.eps)
    shift = torch.zeros_like(scale) if bn.bias is None else bn.bias.detach().double()
    b64 = torch.zeros_like(scale) if bias is None else bias.double()
    return ((w64 * scale.view(-1, 1, 1, 1)).to(weight.dtype),
            ((b64 - bn.running_mean.double()) * scale + shift).to(weight.dtype))


def _conv(weight: torch.Tensor, bias: torch.Tensor | None, conv: nn.Conv2d, padding: tuple[int, int]
          ) -> Callable[[torch.Tensor], torch.Tensor]:
    stride, dilation, groups = conv.stride, conv.dilation, conv.groups

    def apply(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(t, weight, bias, stride, padding, dilation, groups)

    return apply
