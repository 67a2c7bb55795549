"""A small Zeiler & Fergus-style CNN: blocks of ``conv → ReLU → max-pool``, then a linear classifier.

Layer names (for hooks and views): ``conv1``, ``relu1``, ``pool1``, ``conv2``, ... , ``flatten``, ``fc``
(an optional hidden ``fc_hidden``/``relu_fc`` before it), ``out``. ReLUs are modules (never functional, never
in-place), so guided backprop and the deconvnet can change their backward rule.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import nn

from nnsee.errors import TrainingError
from nnsee.models.mlp import MAX_HIDDEN
from nnsee.models.options import int_list_option, int_option

MAX_CHANNELS = 1024


def cnn_options(input_shape: Sequence[int], channels: Any = (16, 32), kernel: Any = 5,
                hidden: Any = 0) -> tuple[list[int], int, int]:
    """``(channels, kernel, hidden)`` checked against the images ``input_shape`` (C, H, W): C is 1 or 3; 1 to 1,024
    filters per block, and at least ``2**blocks`` px per side (each block halves it); an odd ``kernel`` of at most
    ``min(H, W)``; ``hidden`` 0 (none) to 65,536 units."""
    c, h, w = input_shape
    if c not in (1, 3):
        raise TrainingError(f"the cnn takes 1 or 3 input channels, got {c}")
    channels = int_list_option("cnn channels", channels, 1, MAX_CHANNELS, 16, "give 1 to 1024 filters per block")
    if min(h, w) < 2 ** len(channels):
        raise TrainingError(
            f"{len(channels)} pooling blocks need images of at least {2 ** len(channels)} px, got {h}x{w}: "
            "use fewer --channels or a larger --size"
        )
    kernel = int_option("the cnn kernel size", kernel, 1, min(h, w),
                        f"give an odd size up to the images' {min(h, w)} px")
    if kernel % 2 == 0:
        raise TrainingError(f"the cnn kernel size must be odd and positive, got {kernel}")
    hidden = int_option("the cnn hidden layer size", hidden, 0, MAX_HIDDEN, "0 means none")
    return channels, kernel, hidden


def cnn_shapes(input_shape: Sequence[int], n_classes: int, channels: Any = (16, 32), kernel: Any = 5,
               hidden: Any = 0) -> dict[str, tuple[int, ...]]:
    """The weights' shapes: ``conv{i}.weight`` (c_i, c_{i-1}, k, k), ``conv{i}.bias`` (c_i,); each block halves
    H and W (floor); then ``fc_hidden`` (if ``hidden``) and ``out`` on the flattened c_L·H_L·W_L values."""
    channels, kernel, hidden = cnn_options(input_shape, channels, kernel, hidden)
    c, h, w = input_shape
    shapes: dict[str, tuple[int, ...]] = {}
    for i, out_channels in enumerate(channels, start=1):
        shapes[f"conv{i}.weight"], shapes[f"conv{i}.bias"] = (out_channels, c, kernel, kernel), (out_channels,)
        c, h, w = out_channels, h // 2, w // 2
    width = c * h * w
    if hidden:
        shapes["fc_hidden.weight"], shapes["fc_hidden.bias"] = (hidden, width), (hidden,)
        width = hidden
    shapes["out.weight"], shapes["out.bias"] = (n_classes, width), (n_classes,)
    return shapes


class CNN(nn.Sequential):
    """``channels[i]`` filters of ``kernel × kernel`` (padding ``kernel // 2``) per block, each then 2×2 max-pooled."""

    def __init__(
        self,
        input_shape: Sequence[int],
        n_classes: int,
        channels: Sequence[int] | int = (16, 32),
        kernel: int = 5,
        hidden: int = 0,
    ) -> None:
        super().__init__()
        c, h, w = (int(s) for s in input_shape)
        channels, kernel, hidden = cnn_options((c, h, w), channels, kernel, hidden)
        for i, out_channels in enumerate(channels, start=1):
            self.add_module(f"conv{i}", nn.Conv2d(c, out_channels, kernel, padding=kernel // 2))
            self.add_module(f"relu{i}", nn.ReLU())
            self.add_module(f"pool{i}", nn.MaxPool2d(2))
            c, h, w = out_channels, h // 2, w // 2
        self.add_module("flatten", nn.Flatten())
        width = c * h * w
        if hidden:
            self.add_module("fc_hidden", nn.Linear(width, hidden))
            self.add_module("relu_fc", nn.ReLU())
            width = hidden
        self.add_module("out", nn.Linear(width, n_classes))
        self.nnsee_spec = {"name": "cnn", "input_shape": list(input_shape), "n_classes": n_classes,
                           "channels": channels, "kernel": kernel, "hidden": hidden}
