"""Grad-CAM (Selvaraju et al. 2017): a layer's feature maps weighted by how much the target score wants each one.

For a layer with output ``A`` (N, K, h, w): ``α_k = mean_{y,x} ∂f/∂A_k``, ``cam = relu(Σ_k α_k A_k)``. The numbers
are Captum's ``LayerGradCam(model, layer).attribute(x, target, relu_attributions=True)`` (which keeps a channel axis,
(N, 1, h, w)); here the channel axis is dropped: ``(N, h, w)`` at the layer's resolution. Note that Captum's default is
``relu_attributions=False``; the paper and ``relu=True`` here apply the ReLU. ``upsample=True`` resizes the maps
bilinearly (``align_corners=False``, like ``cv2.resize`` in pytorch-grad-cam) to the input's ``(N, H, W)``; no
min-max scaling is applied (pytorch-grad-cam scales each map to [0, 1]).

The layer is any module (dotted ``named_modules()`` name) whose output is ``(N, K, h, w)``. Its output is read by a
forward hook that passes a *clone* on, so an in-place ReLU after the layer does not change the maps read (as Captum
clones its layer evaluations); functional ``F.relu`` needs nothing special, the gradient being the ordinary one. A
layer called more than once in the forward pass is read at its last call, as Captum's ``LayerGradCam`` reads it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nnsee.methods.attribution.target import as_input, selected, target_index
from nnsee.methods.base import MethodError, to_numpy
from nnsee.models.hooks import capture, eval_mode

CONV_TYPES = (nn.Conv1d, nn.Conv2d, nn.Conv3d)


def layer_output_and_gradient(model: nn.Module, x: torch.Tensor, target: int | Sequence[int] | np.ndarray |
                              torch.Tensor, layer: str, output: str) -> tuple[torch.Tensor, torch.Tensor]:
    """``(A, ∂f_target/∂A)`` for the output ``A`` of ``layer`` (its last call), in eval mode; hook removed, training
    flags restored. A clone of ``A`` flows on, so in-place ops after the layer change the clone, not ``A``."""
    with eval_mode(model, grad=True), capture(model, layer, detach=False, clone=True) as seen:
        scores = model(x)
        act = seen.output
        if act is None:
            raise MethodError(f"layer {layer!r} was not called in the model's forward pass")
        t = target_index(target, len(x), scores.shape[1] if scores.ndim == 2 else 0, x.device)
        value = selected(scores, t, output)
        if not act.requires_grad:
            raise MethodError(f"the target score does not depend on layer {layer!r} through autograd")
        (grad,) = torch.autograd.grad(value.sum(), act)
    return act.detach(), grad


def grad_cam(model: nn.Module, x: np.ndarray | torch.Tensor, target: int | Sequence[int] | np.ndarray | torch.Tensor,
             layer: str = "conv2", output: str = "logit", relu: bool = True, upsample: bool = False) -> np.ndarray:
    """Grad-CAM maps ``(N, h, w)`` at ``layer``'s resolution, or ``(N, H, W)`` with ``upsample=True``."""
    if not any(isinstance(m, CONV_TYPES) for m in model.modules()):
        raise MethodError(f"grad_cam needs a convolutional model (feature maps to weight); this "
                          f"{type(model).__name__} has no Conv layer: use saliency, gradient_x_input or "
                          "integrated_gradients")
    xt = as_input(x, model)
    act, grad = layer_output_and_gradient(model, xt, target, layer, output)
    if act.ndim != 4:
        raise MethodError(f"grad_cam needs a layer with feature maps (N, channels, h, w); {layer!r} gives "
                          f"{tuple(act.shape)}: pick a convolutional layer, e.g. the last conv")
    weights = grad.mean(dim=(2, 3), keepdim=True)
    cam = (weights * act).sum(dim=1, keepdim=True)
    if relu:
        cam = F.relu(cam)
    if upsample:
        cam = F.interpolate(cam, size=tuple(xt.shape[2:]), mode="bilinear", align_corners=False)
    return to_numpy(cam[:, 0])
