"""Test models of real-world shapes, written here because torchvision cannot be imported on these machines.

* :func:`resnet18` — ResNet-18's structure (He et al. 2016; torchvision's layout and state-dict keys): a 7x7/2 stem
  conv, BatchNorm, ReLU, 3x3/2 max-pool, four stages ``layer1..layer4`` of two BasicBlocks each (3x3 conv, BN, ReLU,
  3x3 conv, BN, ``+`` the shortcut — a 1x1/2 conv and BN where the shape changes — then ReLU), adaptive average
  pooling to 1x1 and a linear ``fc``. Every ``nn.ReLU`` module is used once in the forward pass; ``shared_relu=True``
  gives torchvision's own blocks, one ``relu`` module called twice per block (the same state dict).
* :func:`vgg` — VGG's structure (Simonyan & Zisserman 2015): ``features`` (3x3 convs, optional BatchNorm, ReLU,
  2x2/2 max-pools), ``avgpool`` (adaptive, to ``pool`` x ``pool``), ``classifier`` (Linear, ReLU, Dropout, Linear,
  ReLU, Dropout, Linear).

``width`` scales the channel counts (64: the published widths); weights come from ``seed`` alone (a private
generator, the global RNG untouched): convs He-normal, linears normal with variance 1/(2·fan_in), BatchNorm affine
weights around 1 and biases around 0, and non-trivial running statistics (means ~ N(0, 0.2²), variances in
[0.5, 2]), so eval-mode BatchNorm is not the identity. Models are returned in eval mode.
"""

from __future__ import annotations

import math

import torch
from torch import nn

#: VGG configurations: channel multiples of ``width`` per conv, "M" a max-pool (VGG-11 = "A", VGG-16 = "D").
VGG_CONFIGS = {
    "11": (1, "M", 2, "M", 4, 4, "M", 8, 8, "M", 8, 8, "M"),
    "16": (1, 1, "M", 2, 2, "M", 4, 4, 4, "M", 8, 8, 8, "M", 8, 8, 8, "M"),
}


class BasicBlock(nn.Module):
    """``relu2(bn2(conv2(relu1(bn1(conv1(x))))) + shortcut(x))``; ``downsample`` (1x1 conv + BN) when shapes change;
    ``shared_relu``: one module ``relu`` for both (torchvision's block)."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1, shared_relu: bool = False) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        if shared_relu:
            self.relu = nn.ReLU(inplace=True)
        else:
            self.relu1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        if not shared_relu:
            self.relu2 = nn.ReLU(inplace=True)
        self.downsample: nn.Module | None = None
        if stride != 1 or c_in != c_out:
            self.downsample = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False),
                                            nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        relu1, relu2 = (self.relu, self.relu) if hasattr(self, "relu") else (self.relu1, self.relu2)
        h = relu1(self.bn1(self.conv1(x)))
        return relu2(self.bn2(self.conv2(h)) + shortcut)


class ResNet18(nn.Module):
    """ResNet-18's layout (torchvision's module names); ``width`` channels in the stem and ``layer1``."""

    def __init__(self, n_classes: int = 1000, width: int = 64, in_channels: int = 3, shared_relu: bool = False
                 ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, width, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        widths = [width, 2 * width, 4 * width, 8 * width]
        c_in = width
        for i, c in enumerate(widths):
            stride = 1 if i == 0 else 2
            blocks = BasicBlock(c_in, c, stride, shared_relu), BasicBlock(c, c, shared_relu=shared_relu)
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
            c_in = c
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c_in, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        h = self.layer4(self.layer3(self.layer2(self.layer1(h))))
        return self.fc(torch.flatten(self.avgpool(h), 1))


class VGG(nn.Module):
    """VGG's layout (torchvision's module names): ``features``, ``avgpool``, ``classifier``."""

    def __init__(self, n_classes: int = 10, config: str = "11", width: int = 16, batch_norm: bool = True,
                 hidden: int = 256, pool: int = 7, in_channels: int = 3) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = in_channels
        for item in VGG_CONFIGS[config]:
            if item == "M":
                layers.append(nn.MaxPool2d(2, 2))
                continue
            c = int(item) * width
            layers.append(nn.Conv2d(c_in, c, 3, padding=1))
            if batch_norm:
                layers.append(nn.BatchNorm2d(c))
            layers.append(nn.ReLU(inplace=True))
            c_in = c
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(pool)
        self.classifier = nn.Sequential(nn.Linear(c_in * pool * pool, hidden), nn.ReLU(True), nn.Dropout(),
                                        nn.Linear(hidden, hidden), nn.ReLU(True), nn.Dropout(),
                                        nn.Linear(hidden, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


def seeded_init(model: nn.Module, seed: int = 0) -> nn.Module:
    """Fill every parameter and BatchNorm statistic from ``seed`` (see the module docstring); returns ``model``."""
    g = torch.Generator().manual_seed(seed)

    def normal(t: torch.Tensor, std: float, mean: float = 0.0) -> None:
        t.copy_(torch.randn(t.shape, generator=g, dtype=torch.float64) * std + mean)

    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv2d | nn.Linear):
                fan_in = m.weight[0].numel()
                normal(m.weight, math.sqrt((2.0 if isinstance(m, nn.Conv2d) else 0.5) / fan_in))
                if m.bias is not None:
                    normal(m.bias, 0.05)
            elif isinstance(m, nn.BatchNorm2d):
                normal(m.weight, 0.2, 1.0)
                normal(m.bias, 0.1)
                normal(m.running_mean, 0.2)
                m.running_var.copy_(0.5 + 1.5 * torch.rand(m.running_var.shape, generator=g, dtype=torch.float64))
    return model


def resnet18(n_classes: int = 1000, width: int = 64, in_channels: int = 3, seed: int = 0,
             dtype: torch.dtype = torch.float32, shared_relu: bool = False) -> ResNet18:
    """A ResNet-18-shaped model, weights from ``seed``, in eval mode (``width=64``: ResNet-18's 11.7M weights)."""
    return seeded_init(ResNet18(n_classes, width, in_channels, shared_relu), seed).to(dtype).eval()


def vgg(n_classes: int = 10, config: str = "11", width: int = 16, batch_norm: bool = True, hidden: int = 256,
        pool: int = 7, in_channels: int = 3, seed: int = 0, dtype: torch.dtype = torch.float32) -> VGG:
    """A VGG-shaped model (``config`` "11" or "16"; ``width=64, hidden=4096``: the published sizes), in eval mode."""
    return seeded_init(VGG(n_classes, config, width, batch_norm, hidden, pool, in_channels), seed).to(dtype).eval()


def photo_like(n: int = 1, size: int = 224, channels: int = 3, seed: int = 0,
               dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """(n, channels, size, size) smooth random images, roughly standardized: low-frequency noise plus a little
    pixel noise (neighbouring pixels correlate, as in photos)."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.randn(n, channels, max(2, size // 16), max(2, size // 16), generator=g, dtype=torch.float64)
    smooth = nn.functional.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)
    fine = 0.3 * torch.randn(n, channels, size, size, generator=g, dtype=torch.float64)
    return (smooth + fine).to(dtype)


def sequential_resnet18(model: ResNet18) -> nn.Sequential:
    """The same modules (shared, not copied) as one ``nn.Sequential``: stem, ``layer1..4``, pool, flatten, ``fc``
    (equal outputs; a shape whose local stem nnsee's occlusion can recompute region by region)."""
    return nn.Sequential(model.conv1, model.bn1, model.relu, model.maxpool, model.layer1, model.layer2,
                         model.layer3, model.layer4, model.avgpool, nn.Flatten(1), model.fc).eval()
