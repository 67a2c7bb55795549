"""Small models for the Zeiler & Fergus tests: random CNNs, an in-place-ReLU net, a functional-ReLU net."""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from nnsee.models.cnn import CNN


def random_cnn(channels_in: int = 1, size: int = 12, n_classes: int = 4, seed: int = 0, hidden: int = 0) -> CNN:
    torch.manual_seed(seed)
    return CNN((channels_in, size, size), n_classes, channels=(4, 6), kernel=3, hidden=hidden).eval()


def inplace_cnn(channels_in: int = 3, seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(channels_in, 5, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2),
        nn.Conv2d(5, 4, 3), nn.ReLU(inplace=True), nn.Flatten(), nn.Linear(4 * 3 * 3, 3),
    ).eval()


class FunctionalReLUNet(nn.Module):
    """A conv net whose second ReLU is ``F.relu`` (its first is a module)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv1 = nn.Conv2d(1, 3, 3, padding=1)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(3, 2, 3, padding=1)
        self.out = nn.Linear(2 * 8 * 8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(F.relu(self.conv2(self.relu1(self.conv1(x)))).flatten(1))


class NoReLUNet(nn.Sequential):
    def __init__(self) -> None:
        torch.manual_seed(0)
        super().__init__(nn.Conv2d(1, 2, 3), nn.Tanh(), nn.Flatten(), nn.Linear(2 * 6 * 6, 3))


class Boom(nn.Module):
    """Raises in its forward pass (to check that hooks are released on error)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("boom")
