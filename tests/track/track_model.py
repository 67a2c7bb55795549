"""A tiny CNN on 1x8x8 images and a plain loop step for the track tests."""

from __future__ import annotations

import torch
from torch import nn

CLASSES = [str(k) for k in range(10)]
SHAPE = (1, 8, 8)


def tiny_cnn(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(4 * 4 * 4, 10))


def train_step(model: nn.Module, optimizer: torch.optim.Optimizer, seed: int) -> torch.Tensor:
    """One step on a fixed random batch: the loss (a 0-d tensor)."""
    g = torch.Generator().manual_seed(seed)
    x, y = torch.randn(16, *SHAPE, generator=g), torch.randint(0, 10, (16,), generator=g)
    model.train()
    loss = nn.functional.cross_entropy(model(x), y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.detach()
