"""Deep models and real photos for the benchmarks (which may not import ``tests``; torchvision does not import here).

* :func:`resnet18` — ResNet-18's layout with torchvision's module names (He et al. 2016): a 7x7/2 ``conv1``,
  ``bn1``, ``relu``, a 3x3/2 ``maxpool``, stages ``layer1..layer4`` of two BasicBlocks (3x3 conv, BN, ReLU, 3x3
  conv, BN, plus the shortcut — ``downsample`` = 1x1/2 conv + BN where the shape changes — then ReLU; each
  ``nn.ReLU`` module used once), ``avgpool`` to 1x1 and ``fc``. Widths 64·(1, 2, 4, 8): 11.7M weights at 1000 classes.
  Weights from ``seed`` alone (a private generator): convs He-normal (std sqrt(2/fan_in)), ``fc`` normal with
  variance 1/(2·fan_in), BatchNorm weights N(1, 0.2²), biases N(0, 0.1²), running means N(0, 0.2²), running
  variances uniform in [0.5, 2] — so eval-mode BatchNorm is not the identity. Returned in eval mode.
* :func:`photo_batch` — ``n`` random square crops of scikit-image's natural photos (offline), bilinear-resized to
  ``side``, standardized with ImageNet's channel means and deviations: what an ImageNet model is fed.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def _conv_bn(c_in: int, c_out: int, kernel: int, stride: int) -> tuple[nn.Conv2d, nn.BatchNorm2d]:
    return nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False), nn.BatchNorm2d(c_out)


class Block(nn.Module):
    """``relu2(bn2(conv2(relu1(bn1(conv1(x))))) + shortcut(x))``, ``shortcut`` = ``downsample`` or the identity."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1, self.bn1 = _conv_bn(c_in, c_out, 3, stride)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv2, self.bn2 = _conv_bn(c_out, c_out, 3, 1)
        self.relu2 = nn.ReLU(inplace=True)
        self.downsample = nn.Sequential(*_conv_bn(c_in, c_out, 1, stride)) if stride > 1 or c_in != c_out else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = x if self.downsample is None else self.downsample(x)
        return self.relu2(self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(x))))) + skip)


class ResNet18(nn.Module):
    """ResNet-18 (torchvision's names); ``width`` channels in the stem and ``layer1``, doubling per stage."""

    def __init__(self, num_classes: int = 1000, width: int = 64) -> None:
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(3, width, 7, stride=2, padding=3, bias=False), nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        c = width
        for stage in range(4):
            c_out = width * 2**stage
            setattr(self, f"layer{stage + 1}", nn.Sequential(Block(c, c_out, 1 if stage == 0 else 2),
                                                             Block(c_out, c_out, 1)))
            c = c_out
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for stage in (self.layer1, self.layer2, self.layer3, self.layer4):
            h = stage(h)
        return self.fc(self.avgpool(h).flatten(1))


def _fill(model: nn.Module, seed: int) -> nn.Module:
    """Seeded weights and BatchNorm statistics (see the module docstring)."""
    g = torch.Generator().manual_seed(seed)

    def randn(t: torch.Tensor, std: float, mean: float = 0.0) -> None:
        t.copy_(mean + std * torch.randn(t.shape, generator=g))

    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                randn(m.weight, math.sqrt(2.0 / m.weight[0].numel()))
            elif isinstance(m, nn.Linear):
                randn(m.weight, math.sqrt(0.5 / m.in_features))
                randn(m.bias, 0.05)
            elif isinstance(m, nn.BatchNorm2d):
                randn(m.weight, 0.2, 1.0)
                randn(m.bias, 0.1)
                randn(m.running_mean, 0.2)
                m.running_var.copy_(0.5 + 1.5 * torch.rand(m.running_var.shape, generator=g))
    return model


def resnet18(num_classes: int = 1000, seed: int = 0, width: int = 64) -> ResNet18:
    """A ResNet-18-shaped model with seeded weights, in eval mode (``width`` < 64: a slimmer one for --quick)."""
    return _fill(ResNet18(num_classes, width), seed).eval()


def photo_batch(n: int, side: int = 224, seed: int = 0) -> torch.Tensor:
    """(n, 3, side, side) float32: random square crops (a third to all of the shorter side) of :data:`PHOTOS`, in
    turn, bilinear-resized to ``side``, pixels / 255 standardized per channel with ImageNet's mean and std."""
    import skimage.data
    from PIL import Image

    rng = np.random.default_rng(seed)
    photos = [getattr(skimage.data, name)() for name in PHOTOS]
    out = np.empty((n, side, side, 3), dtype=np.float32)
    for i in range(n):
        photo = photos[i % len(photos)]
        h, w = photo.shape[:2]
        s = int(rng.integers(min(h, w) // 3, min(h, w) + 1))
        y, x = int(rng.integers(0, h - s + 1)), int(rng.integers(0, w - s + 1))
        crop = Image.fromarray(photo[y : y + s, x : x + s]).resize((side, side), Image.Resampling.BILINEAR)
        out[i] = np.asarray(crop, dtype=np.float32) / 255.0
    out = (out - np.float32(IMAGENET_MEAN)) / np.float32(IMAGENET_STD)
    return torch.from_numpy(out.transpose(0, 3, 1, 2).copy())
