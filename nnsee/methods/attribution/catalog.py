"""Every attribution method by its CLI name, with defaults that suit the model and input size at hand.

Each entry maps ``(model, x_std (N, C, H, W), target (N,), output)`` to ``(maps (N, C', H, W), extra)``, where
``C'`` is 1 or C and ``extra`` holds method-specific numbers (integrated gradients' convergence delta).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from torch import nn

from nnsee.methods.attribution.deconvnet import deconvnet
from nnsee.methods.attribution.grad_cam import grad_cam
from nnsee.methods.attribution.gradient_x_input import gradient_x_input
from nnsee.methods.attribution.guided_backprop import guided_backprop
from nnsee.methods.attribution.integrated_gradients import integrated_gradients
from nnsee.methods.attribution.occlusion import occlusion
from nnsee.methods.attribution.saliency import saliency
from nnsee.methods.base import MethodError

Attribution = Callable[[nn.Module, np.ndarray, np.ndarray, str], tuple[np.ndarray, dict[str, Any]]]


def last_conv(model: nn.Module) -> str:
    """The dotted name of the model's last Conv2d (Grad-CAM's usual layer)."""
    names = [name for name, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    if not names:
        raise MethodError("grad-cam needs a convolutional layer; this model has none (use saliency or occlusion)")
    return names[-1]


def occlusion_window(shape: tuple[int, ...]) -> tuple[int, int]:
    """(window, stride): about a seventh of the image side (4 px on 28x28), moved by half a window."""
    window = max(2, round(min(shape[-2:]) / 7))
    return window, max(1, window // 2)


def _ig(model: nn.Module, x: np.ndarray, t: np.ndarray, output: str) -> tuple[np.ndarray, dict[str, Any]]:
    result = integrated_gradients(model, x, t, output=output)
    return result.attributions, {"convergence_delta": [float(d) for d in result.delta]}


def _grad_cam(model: nn.Module, x: np.ndarray, t: np.ndarray, output: str) -> tuple[np.ndarray, dict[str, Any]]:
    layer = last_conv(model)
    return grad_cam(model, x, t, layer=layer, output=output, upsample=True)[:, None], {"layer": layer}


def _occlusion(model: nn.Module, x: np.ndarray, t: np.ndarray, output: str) -> tuple[np.ndarray, dict[str, Any]]:
    window, stride = occlusion_window(x.shape)
    return occlusion(model, x, t, window=window, stride=stride, output=output), {"window": window, "stride": stride}


METHODS: dict[str, Attribution] = {
    "saliency": lambda m, x, t, o: (saliency(m, x, t, output=o), {}),
    "gradient-x-input": lambda m, x, t, o: (gradient_x_input(m, x, t, output=o), {}),
    "integrated-gradients": _ig,
    "guided-backprop": lambda m, x, t, o: (guided_backprop(m, x, t, output=o), {}),
    "deconvnet": lambda m, x, t, o: (deconvnet(m, x, t, output=o), {}),
    "grad-cam": _grad_cam,
    "occlusion": _occlusion,
}


def attribute(name: str, model: nn.Module, x: np.ndarray, target: np.ndarray,
              output: str = "logit") -> tuple[np.ndarray, dict[str, Any]]:
    """Run the method called ``name`` (see :data:`METHODS`)."""
    if name not in METHODS:
        raise MethodError(f"unknown method {name!r}; choose one of {', '.join(METHODS)}")
    return METHODS[name](model, x, target, output)
