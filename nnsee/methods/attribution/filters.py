"""First-layer filters as images (Zeiler & Fergus Fig. 2, layer 1): the weights of the first convolution.

Returned raw, ``(F, C, kh, kw)`` in the model's dtype, one filter per output channel; scaling for display (a
symmetric diverging scale, shared or per filter) is the renderer's job.
"""

from __future__ import annotations

import numpy as np
from torch import nn

from nnsee.methods.base import MethodError, get_module, to_numpy


def first_layer_filters(model: nn.Module, layer: str | None = None) -> np.ndarray:
    """The weights ``(F, C, kh, kw)`` of ``layer`` (a dotted name), by default the model's first ``nn.Conv2d``.

    "First" is registration order in ``named_modules()``, which is the forward order for ``nn.Sequential`` models.
    """
    if layer is None:
        convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
        if not convs:
            raise MethodError(f"first_layer_filters needs a convolutional model; this {type(model).__name__} has no "
                              "nn.Conv2d layer (for a dense model, look at its first Linear's weights as templates)")
        module = convs[0]
    else:
        module = get_module(model, layer)
        if not isinstance(module, nn.Conv2d):
            raise MethodError(f"layer {layer!r} is a {type(module).__name__}, not an nn.Conv2d: filters are the "
                              "weights of a 2-D convolution")
    return to_numpy(module.weight)
