"""Activation maximization: the input that a class score or a unit's activation likes most, by gradient ascent.

Starting from small seeded noise ``x₀ ~ 0.01·N(0, 1)`` (shape (1, C, H, W)), Adam (learning rate ``lr``) maximizes

    J(x) = s(roll(x, δ)) − l2 · mean(x²) − tv · TV(x),
    TV(x) = mean((x[i+1, j] − x[i, j])²) + mean((x[i, j+1] − x[i, j])²)

where ``δ`` is a fresh random shift of up to ``jitter`` pixels per axis each step (``torch.roll``: the image wraps
around) and ``s`` is the target: a class index (its logit or softmax probability, ``output``), or ``(layer, channel)``
for the mean of that channel's activation map (the unit's value for a flat layer; a layer called more than once in
the forward pass is read at its last call, as Captum reads layers), as Lucent's channel objective.
Jitter and the two regularizers keep the image from turning into high-frequency noise; the defaults suit small
grayscale inputs (28×28, standardized). Lucent's defaults are for ImageNet nets: a 128 px, 3-channel image in an
FFT parameterization with colour decorrelation, Adam at lr 0.05 for 512 steps, pad 12 / jitter 8 / scale 0.9–1.1 /
rotate ±10° / jitter 4, ImageNet normalization and upsampling to 224, loss −mean of the channel; a 28×28 one-channel
net needs ``param.image(28, channels=1)``, ``preprocess=False``, no upsampling and smaller transforms there.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn

from nnsee.methods.attribution.target import selected, target_index
from nnsee.methods.base import MethodError, param_of, resolve_input_shape
from nnsee.models.hooks import eval_mode, layer_reader


def total_variation(x: torch.Tensor) -> torch.Tensor:
    """``mean((x[i+1, j] − x[i, j])²) + mean((x[i, j+1] − x[i, j])²)`` over the last two axes."""
    return (x[..., 1:, :] - x[..., :-1, :]).pow(2).mean() + (x[..., :, 1:] - x[..., :, :-1]).pow(2).mean()


def _score(model: nn.Module, x: torch.Tensor, target: int | tuple[str, int], output: str,
           read: Callable[[torch.Tensor], torch.Tensor] | None) -> torch.Tensor:
    if isinstance(target, tuple):
        layer, channel = target
        a = read(x)
        if not 0 <= channel < a.shape[1]:
            raise MethodError(f"layer {layer!r} has {a.shape[1]} channels, got channel {channel}")
        return a[:, channel].mean()
    out = model(x)
    return selected(out, target_index(target, 1, out.shape[1], out.device), output)[0]


def activation_maximization(model: nn.Module, target: int | tuple[str, int], input_shape: Sequence[int] | None = None,
                            steps: int = 200, lr: float = 0.05, l2: float = 1e-3, tv: float = 1e-2, jitter: int = 2,
                            seed: int = 0, output: str = "logit") -> np.ndarray:
    """The image (C, H, W) that maximizes the target (a class index, or ``(layer, channel)``); see the module doc.

    ``input_shape`` defaults to the model's ``nnsee_spec``. Deterministic for a given ``seed``; the global RNG and
    the model (weights, gradients, training flag) are left as they were.
    """
    if isinstance(target, list):
        target = tuple(target)
    if isinstance(target, tuple) and (len(target) != 2 or not isinstance(target[0], str)):
        raise MethodError(f"target must be a class index or (layer name, channel), got {target!r}")
    if steps < 0 or lr <= 0 or l2 < 0 or tv < 0 or jitter < 0:
        raise MethodError("steps, l2, tv and jitter must be 0 or more, and lr positive")
    shape = resolve_input_shape(model, input_shape)
    device, dtype = param_of(model)
    gen = torch.Generator().manual_seed(seed)
    x = (0.01 * torch.randn((1, *shape), generator=gen)).to(device=device, dtype=dtype).requires_grad_(True)
    opt = torch.optim.Adam([x], lr=lr)
    reader = layer_reader(model, target[0]) if isinstance(target, tuple) else contextlib.nullcontext()
    with eval_mode(model, grad=True), reader as read:
        for _ in range(steps):
            shift = torch.randint(-jitter, jitter + 1, (2,), generator=gen).tolist() if jitter else [0, 0]
            moved = torch.roll(x, shifts=shift, dims=(-2, -1))
            objective = _score(model, moved, target, output, read) - l2 * x.pow(2).mean() - tv * total_variation(x)
            (grad,) = torch.autograd.grad(-objective, x)
            x.grad = grad
            opt.step()
    return x.detach()[0].cpu().numpy()


def as_photo(image: np.ndarray, standardizer: object | None) -> tuple[np.ndarray, float]:
    """The maximizing image (C, H, W) in pixel units for display, and the share of its values clipped: the run's
    standardization undone (``x·std + mean`` per channel for ``--normalize``; ``x`` itself without one), then clipped
    to [0, 1]. An RGB model's image is then a colour photo of what the model's input would be."""
    x = np.asarray(image, dtype=np.float32)
    pixels = standardizer.inverse(x[None])[0] if standardizer is not None else x  # type: ignore[attr-defined]
    outside = float(np.mean((pixels < 0) | (pixels > 1))) if pixels.size else 0.0
    return np.clip(pixels, 0.0, 1.0).astype(np.float32), outside
