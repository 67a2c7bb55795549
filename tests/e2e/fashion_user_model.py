"""A user's own model file, as `nnsee adopt --code path/resnet.py:small_resnet` meets it: the end-to-end test copies
it into a temporary package beside ``blocks.py`` (a copy of tests/zoo.py, whose ``BasicBlock`` it imports as a
sibling module), trains it in a plain loop and adopts it. It never imports nnsee.

A small ResNet (He et al. 2016) for 64x64 RGB: a 3x3/2 stem conv, BatchNorm, ReLU, a 3x3/2 max-pool; three stages
of one BasicBlock each (3x3 conv, BN, ReLU, 3x3 conv, BN, ``+`` the shortcut — a 1x1/2 conv and BN where the shape
changes — then ReLU) at 16, 8 and 4 px; adaptive average pooling and a linear classifier.
"""

from __future__ import annotations

import torch
from blocks import BasicBlock  # the user's sibling module: a copy of tests/zoo.py
from torch import nn


class SmallResNet(nn.Module):
    def __init__(self, n_classes: int = 10, width: int = 16) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, 3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.layer1 = BasicBlock(width, width)  # one nn.ReLU module per call
        self.layer2 = BasicBlock(width, 2 * width, stride=2)
        self.layer3 = BasicBlock(2 * width, 4 * width, stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(4 * width, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.layer3(self.layer2(self.layer1(self.maxpool(self.relu(self.bn1(self.conv1(x)))))))
        return self.fc(torch.flatten(self.avgpool(h), 1))


def small_resnet(n_classes: int = 10, width: int = 16) -> SmallResNet:
    return SmallResNet(n_classes, width)
