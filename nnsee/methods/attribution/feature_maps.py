"""Feature maps: what one layer outputs for some inputs, ``(N, F, h, w)`` for a convolutional layer.

The layer is read by a forward hook (:func:`nnsee.models.hooks.capture`, always released) that passes a *clone* of
the output on to the rest of the model, so an in-place op after the layer (``nn.ReLU(inplace=True)``) cannot change
the maps read: they are the layer's own output, as Captum's ``LayerActivation`` gives (for a layer
called more than once in the forward pass, its last call's, as Captum's).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from nnsee.methods.attribution.target import as_input
from nnsee.methods.base import MethodError, to_numpy
from nnsee.models.hooks import capture, eval_mode


def feature_maps(model: nn.Module, x: np.ndarray | torch.Tensor, layer: str) -> np.ndarray:
    """The output of ``layer`` (dotted ``named_modules()`` name) for ``x``, e.g. ``(N, F, h, w)``, model dtype."""
    xt = as_input(x, model)
    with eval_mode(model), capture(model, layer, clone=True) as seen:
        model(xt)
    if seen.output is None:
        raise MethodError(f"layer {layer!r} was not called in the model's forward pass")
    return to_numpy(seen.output)
