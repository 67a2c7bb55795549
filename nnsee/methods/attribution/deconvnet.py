"""Zeiler & Fergus's deconvnet: the gradient with ReLU backward ``relu(g)``; and one activation projected to pixels.

The deconvnet reverses each layer: unpool with the forward pass's max switches (= max-pool backward), rectify
(``relu(g)``, the rule here), filter with the transposed filters (= conv backward). So the deconvnet *is* the
gradient under the ReLU rule of :mod:`nnsee.methods.attribution.relu_rules`: :func:`deconvnet` equals Captum's
``Deconvolution`` and :func:`project_activation` equals ``NeuronDeconvolution`` (tests check both).

Beyond Zeiler & Fergus's conv/ReLU/max-pool nets, the same rule carries the projection through the layers of
ResNet- and VGG-shaped models (guided backprop likewise): an eval-mode BatchNorm is the fixed per-channel affine map
``y = γ (x − μ) / √(σ² + ε) + β``, so the signal going down is multiplied by ``γ / √(σ² + ε)`` per channel — the
transposed map, as a conv is reversed by its transposed filter; the shift never enters, and the result is the
deconvnet of the network with BN folded into the conv before it (a negative ``γ`` flips a channel's sign before the
next ReLU's rectification). A residual add ``y = F(x) + s(x)`` sends the signal down both paths unchanged, and the
two projections are summed where they fork: the residual branch with its ReLU rules plus the shortcut (identity, or
the transposed 1x1 conv and BN). These are Captum's numbers (a test checks a ResNet-18-shaped model at 224 px).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from nnsee.methods.attribution.relu_rules import relu_rule, rule_gradient
from nnsee.methods.attribution.target import as_input
from nnsee.methods.base import MethodError
from nnsee.models.hooks import eval_mode


def deconvnet(model: nn.Module, x: np.ndarray | torch.Tensor, target: int | Sequence[int] | np.ndarray,
              output: str = "logit") -> np.ndarray:
    """Deconvnet map (N, C, H, W) of the score ``f_target(x)`` (``output``: "logit" or "softmax").

    Each ReLU passes ``relu(g)`` of the gradient ``g`` arriving at it, whatever the sign of its forward input.
    """
    return rule_gradient(model, x, target, output, "deconvnet")


def _per_image(value: int | Sequence[int] | np.ndarray, n: int, what: str) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(value), dtype=torch.long).reshape(-1)
    if t.numel() == 1:
        t = t.expand(n)
    if t.numel() != n:
        raise MethodError(f"got {t.numel()} {what} for {n} images: give one, or one per image")
    return t


def project_activation(model: nn.Module, x: np.ndarray | torch.Tensor, layer: str,
                       channel: int | Sequence[int] | np.ndarray,
                       position: tuple[int, int] | Sequence[Sequence[int]] | np.ndarray | None = None,
                       rule: str = "deconvnet", calls: int | None = None) -> np.ndarray:
    """Zeiler's projection of one activation ``A[channel, y, x]`` of ``layer`` back to pixel space, (N, C, H, W).

    All other activations of the layer are zeroed: the backward pass starts from a one-hot on that single
    activation, so the result is ``∂A[channel, y, x] / ∂input`` under the ReLU ``rule`` ("deconvnet", or "guided"
    for guided backprop), the same as Captum's ``NeuronDeconvolution(model, layer).attribute(x, (channel, y, x))``
    (``NeuronGuidedBackprop``). ``channel`` and ``position`` are one for all images or one per image;
    ``position=None`` takes each image's maximum of that channel's map (first in row-major order on ties). For a
    layer with flat output (N, F), ``channel`` is the unit and ``position`` is ignored. A layer called more than once
    in the forward pass is read at its last call, as Captum's neuron methods read it. ``calls``: how often one
    forward pass calls ``layer`` (None: counted in a no-grad pass of the first image alone); the gradient-on pass
    stops right after that call, so nothing past the layer is computed.
    """
    from nnsee.methods.dataset_views._stopped import layer_calls, stopped_pass

    t = as_input(x, model)
    n = len(t)
    if calls is None:
        with eval_mode(model):
            calls = layer_calls(model, t[:1], [layer]).calls[layer]
    box: dict[str, torch.Tensor] = {}
    # The reader's hook goes on after the rule's hooks, so a ReLU layer hands it the rule-following output; the
    # model runs on a copy of the leaf ``t`` (an in-place first layer may then change it).
    with (eval_mode(model, grad=True), relu_rule(model, rule),
          stopped_pass(model, {layer: calls}, layer, lambda _name, out: box.__setitem__("a", out)) as run):
        t = t.requires_grad_(True)
        run(t.clone())
        a = box["a"]
        ch = _per_image(channel, n, "channels").to(a.device)
        if (ch < 0).any() or (ch >= a.shape[1]).any():
            raise MethodError(f"layer {layer!r} has {a.shape[1]} channels, got channel {ch.tolist()}")
        rows = torch.arange(n, device=a.device)
        if a.ndim == 2:
            picked = a[rows, ch]
        elif a.ndim == 4:
            maps = a[rows, ch]  # (N, h, w)
            if position is None:
                flat = maps.detach().flatten(1).argmax(dim=1)
                yy, xx = flat // maps.shape[2], flat % maps.shape[2]
            else:
                pos = torch.as_tensor(np.asarray(position), dtype=torch.long).reshape(-1, 2)
                if len(pos) == 1:
                    pos = pos.expand(n, 2)
                if len(pos) != n:
                    raise MethodError(f"got {len(pos)} positions for {n} images: give one (y, x), or one per image")
                yy, xx = pos[:, 0].to(a.device), pos[:, 1].to(a.device)
                h, w = maps.shape[1:]
                if (yy < 0).any() or (yy >= h).any() or (xx < 0).any() or (xx >= w).any():
                    raise MethodError(f"positions must lie in the {h}x{w} map of {layer!r}, got {pos.tolist()}")
            picked = maps[rows, yy, xx]
        else:
            raise MethodError(f"layer {layer!r} gives shape {tuple(a.shape)}; expected (N, C, h, w) or (N, F)")
        (grad,) = torch.autograd.grad(picked.sum(), t)
    return grad.detach().cpu().numpy()
