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
#: What one chunk of :func:`grad_cams` may keep for its backward pass (the leaf outputs of a whole forward pass).
CAM_BYTES = 192 * 2**20


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


def grad_cams(model: nn.Module, x: np.ndarray | torch.Tensor, target: int | Sequence[int] | np.ndarray | torch.Tensor,
              layers: Sequence[str], output: str = "logit", relu: bool = True,
              batch_size: int | None = None) -> dict[str, np.ndarray]:
    """:func:`grad_cam` maps ``(N, h, w)`` of several ``layers`` at once: per chunk of images, one forward pass
    reading every layer (a clone flows on from each) and one backward pass to all of them, so memory is that of one
    chunk whatever N. ``batch_size``: images per chunk (default: :data:`CAM_BYTES` over the bytes of the input and
    every leaf output of one image's whole pass, what autograd keeps)."""
    from nnsee.methods.dataset_views._stopped import autograd_batch_size

    x = x[None] if np.ndim(x) == 3 else x
    as_input(x[:1], model)  # checks the shape; each chunk is converted (and copied) on its own
    n = len(x)
    layers = list(dict.fromkeys(layers))
    t = torch.as_tensor(np.asarray(target), dtype=torch.long).reshape(-1)
    t = t.expand(n) if t.numel() == 1 else t
    if t.numel() != n:
        raise MethodError(f"got {t.numel()} targets for {n} inputs: give one class index, or one per input")
    if batch_size is None:
        batch_size = autograd_batch_size(model, as_input(x[:1], model), CAM_BYTES)
    parts: dict[str, list[torch.Tensor]] = {layer: [] for layer in layers}
    for s in range(0, n, max(1, int(batch_size))):
        chunk = as_input(x[s : s + batch_size], model)
        for layer, cam in _chunk_cams(model, chunk, t[s : s + batch_size], layers, output).items():
            parts[layer].append(F.relu(cam) if relu else cam)
    return {layer: to_numpy(torch.cat(p)) for layer, p in parts.items()}


def _chunk_cams(model: nn.Module, x: torch.Tensor, target: torch.Tensor, layers: list[str],
                output: str) -> dict[str, torch.Tensor]:
    """Grad-CAM maps (before the ReLU) of ``layers`` for one chunk: one forward and one backward pass (everything
    autograd kept is freed on return)."""
    from contextlib import ExitStack

    with eval_mode(model, grad=True), ExitStack() as stack:
        seen = {layer: stack.enter_context(capture(model, layer, detach=False, clone=True)) for layer in layers}
        scores = model(x)
        for layer, box in seen.items():
            if box.output is None or box.output.ndim != 4 or not box.output.requires_grad:
                what = "was not called" if box.output is None else f"gives {tuple(box.output.shape)}"
                raise MethodError(f"grad_cam needs a layer with feature maps (N, channels, h, w) that the score "
                                  f"depends on; {layer!r} {what}")
        t = target_index(target, len(x), scores.shape[1] if scores.ndim == 2 else 0, x.device)
        acts = [seen[layer].output for layer in layers]
        grads = torch.autograd.grad(selected(scores, t, output).sum(), acts)
    return {layer: (grad.mean(dim=(2, 3), keepdim=True) * act.detach()).sum(dim=1)
            for layer, act, grad in zip(layers, acts, grads, strict=True)}


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
