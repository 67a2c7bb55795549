"""A small Zeiler & Fergus-style CNN: blocks of ``conv → ReLU → max-pool``, then a linear classifier.

Layer names (for hooks and views): ``conv1``, ``relu1``, ``pool1``, ``conv2``, ... , ``flatten``, ``fc``
(an optional hidden ``fc_hidden``/``relu_fc`` before it), ``out``. ReLUs are modules (never functional, never
in-place), so guided backprop and the deconvnet can change their backward rule.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from nnsee.errors import TrainingError


class CNN(nn.Sequential):
    """``channels[i]`` filters of ``kernel × kernel`` (padding ``kernel // 2``) per block, each then 2×2 max-pooled."""

    def __init__(
        self,
        input_shape: Sequence[int],
        n_classes: int,
        channels: Sequence[int] = (16, 32),
        kernel: int = 5,
        hidden: int = 0,
    ) -> None:
        super().__init__()
        c, h, w = (int(s) for s in input_shape)
        channels = [int(ch) for ch in ([channels] if isinstance(channels, int) else channels)]
        if c not in (1, 3):
            raise TrainingError(f"the cnn takes 1 or 3 input channels, got {c}")
        if not channels or any(not 1 <= ch <= 1024 for ch in channels):
            raise TrainingError(f"cnn channels must be 1 to 1024 per block, got {channels}")
        if kernel < 1 or kernel % 2 == 0:
            raise TrainingError(f"the cnn kernel size must be odd and positive, got {kernel}")
        if min(h, w) < 2 ** len(channels):
            raise TrainingError(
                f"{len(channels)} pooling blocks need images of at least {2 ** len(channels)} px, got {h}x{w}: "
                "use fewer --channels or a larger --size"
            )
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

