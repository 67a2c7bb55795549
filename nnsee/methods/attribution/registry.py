"""Every attribution method by name: the one list the CLI, the report, the live page and the sanity check read.

Adding a method is one file (its function) plus one entry in :data:`REGISTERED`. Options left at None take defaults
that suit the model and input at hand (Grad-CAM's last conv layer, an occlusion window of about a seventh of the
image side).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from nnsee.errors import MethodError, not_one_of
from nnsee.methods.attribution.deconvnet import deconvnet
from nnsee.methods.attribution.grad_cam import grad_cam
from nnsee.methods.attribution.gradient_x_input import gradient_x_input
from nnsee.methods.attribution.guided_backprop import guided_backprop
from nnsee.methods.attribution.integrated_gradients import integrated_gradients
from nnsee.methods.attribution.method import Attribution, Method, Option
from nnsee.methods.attribution.occlusion import occlusion
from nnsee.methods.attribution.saliency import saliency
from nnsee.methods.attribution.smoothgrad import NOISE_TUNNELS, smoothgrad
from nnsee.models.capabilities import capabilities

Images = np.ndarray | torch.Tensor


def last_conv(model: nn.Module) -> str:
    """The dotted name of the model's last Conv2d (Grad-CAM's usual layer)."""
    layer = capabilities(model).last_conv
    if layer is None:
        raise MethodError("grad-cam needs a convolutional layer; this model has none (use saliency or occlusion)")
    return layer


def occlusion_window(shape: Sequence[int]) -> tuple[int, int]:
    """(window, stride) scaled to the image: stride about side / 14, window = 2 * stride (a seventh of the side).

    The stride is the common divisor of the height and width nearest side / 14 (side = the shorter one) within
    [side / 20, side / 10], so the windows tile the image exactly ((side - window) is a multiple of the stride);
    else round(side / 14). At least 1 and 2. 28x28: 4 moved by 2; 64: 8 by 4; 96: 12 by 6; 224: 32 by 16.
    """
    h, w = (int(v) for v in shape[-2:])
    side = min(h, w)
    ideal = side / 14
    common = math.gcd(h, w)
    tiling = [d for d in range(max(1, math.ceil(side / 20)), int(side / 10) + 1) if common % d == 0]
    stride = min(tiling, key=lambda d: (abs(d - ideal), d)) if tiling else max(1, round(ideal))
    return 2 * stride, stride


OCCLUSION_WINDOW = Option("window", int, None, "window side in pixels (default: 2 x stride, about side / 7: "
                          "4 at 28 px, 8 at 64, 32 at 224)", low=1, high=4096)
OCCLUSION_STRIDE = Option("stride", int, None, "window step (default: the common divisor of the sides nearest "
                          "side / 14, so the windows tile the image: 2 at 28 px, 4 at 64, 16 at 224; window / 2 when "
                          "a window is given)", low=1, high=4096)


def _plain(name: str, function: Any) -> Any:
    def run(model: nn.Module, x: Images, target: Any, output: str) -> Attribution:
        return Attribution(name, function(model, x, target, output=output))

    return run


def _integrated_gradients(model: nn.Module, x: Images, target: Any, output: str, steps: int = 50,
                          baseline: float = 0.0) -> Attribution:
    result = integrated_gradients(model, x, target, baseline=baseline, steps=steps, output=output)
    return Attribution("integrated-gradients", result.attributions,
                       extras={"convergence_delta": [float(d) for d in result.delta], "steps": steps,
                               "baseline": baseline})


def _grad_cam(model: nn.Module, x: Images, target: Any, output: str, layer: str | None = None) -> Attribution:
    layer = layer or last_conv(model)
    return Attribution("grad-cam", grad_cam(model, x, target, layer=layer, output=output), space="layer",
                       extras={"layer": layer})


def _occlusion(model: nn.Module, x: Images, target: Any, output: str, window: int | None = None,
               stride: int | None = None, baseline: float = 0.0) -> Attribution:
    auto_window, auto_stride = occlusion_window(tuple(np.shape(x)))
    window = window or auto_window
    stride = stride or (auto_stride if window == auto_window else max(1, window // 2))
    maps = occlusion(model, x, target, window=window, stride=stride, baseline=baseline, output=output)
    return Attribution("occlusion", maps, extras={"window": window, "stride": stride, "baseline": baseline})


#: Most forward/backward passes an option may ask for per image (10,000 passes of a small CNN: about a minute here).
MAX_PASSES = 10_000
STEPS = Option("steps", int, 50, "path points of the integral (Gauss–Legendre)", low=1, high=MAX_PASSES)
BASELINE = Option("baseline", float, 0.0, "the value of the reference image x′ (0: the standardized mean)",
                  low=-1e6, high=1e6)

REGISTERED: tuple[Method, ...] = (
    Method("saliency", _plain("saliency", saliency), "|∂f/∂x|, the largest over channels (Simonyan et al. 2014)",
           live=True),
    Method("gradient-x-input", _plain("gradient-x-input", gradient_x_input),
           "x ⊙ ∂f/∂x; for a linear model exactly x ⊙ W_k"),
    Method("integrated-gradients", _integrated_gradients,
           "(x − x′) ⊙ the mean gradient on the path from x′ to x (Sundararajan et al. 2017)",
           options=(STEPS, BASELINE), complete=True),
    Method("occlusion", _occlusion, "the score drop when a window of the image is hidden (Zeiler & Fergus 2014)",
           needs=frozenset(), options=(OCCLUSION_WINDOW, OCCLUSION_STRIDE, BASELINE), live=True),
    Method("guided-backprop", _plain("guided-backprop", guided_backprop),
           "the gradient with only positive signals passed back through active ReLUs (Springenberg et al. 2015)",
           needs=frozenset({"gradients", "relu_modules"}), live=True),
    Method("deconvnet", _plain("deconvnet", deconvnet),
           "Zeiler & Fergus's deconvnet: the gradient with relu(g) at every ReLU",
           needs=frozenset({"gradients", "relu_modules"})),
    Method("grad-cam", _grad_cam,
           "relu(Σ_k mean(∂f/∂A_k) A_k) at a conv layer (Selvaraju et al. 2017)", needs=frozenset({"conv_layer"}),
           options=(Option("layer", str, None, "the conv layer (default: the last)"),), space="layer"),
    Method("smoothgrad", smoothgrad,
           "a gradient map averaged over noisy copies x + N(0, σ²), σ = noise level × (max − min) of each image "
           "(Smilkov et al. 2017); vargrad: their variance",
           options=(Option("base", str, "saliency", "the gradient method smoothed"),
                    Option("kind", str, "smoothgrad", "smoothgrad (mean), smoothgrad_sq (mean of squares) or "
                           "vargrad (variance)", choices=NOISE_TUNNELS),
                    Option("samples", int, 25, "noisy copies per image", low=1, high=MAX_PASSES),
                    Option("noise_level", float, 0.15, "σ as a share of each image's value range", low=0, high=100),
                    Option("seed", int, 0, "seed of the noise", low=0, high=2**32 - 1))),
)
METHODS: dict[str, Method] = {m.name: m for m in REGISTERED}


def get_method(name: str) -> Method:
    """The registered method called ``name``, or a MethodError listing them."""
    if name not in METHODS:
        raise MethodError(not_one_of("method", name, METHODS))
    return METHODS[name]


def attribute(name: str, model: nn.Module, x: Images, target: Any, output: str = "logit",
              **options: Any) -> Attribution:
    """Run the method called ``name`` (see :data:`METHODS`) with its ``options``."""
    return get_method(name).attribute(model, x, target, output, **options)


def applicable(model: nn.Module, input_shape: Sequence[int] | None = None) -> dict[str, Method]:
    """The registered methods that apply to ``model`` (their ``needs`` met by its capabilities)."""
    caps = capabilities(model, input_shape)
    return {name: m for name, m in METHODS.items() if m.refusal(caps) is None}
