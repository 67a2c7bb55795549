"""Work for the memory tests' child processes (imported there as ``tests.dataset_views.streamed``, so it needs
nothing from the tests' own path): a ResNet-18-shaped model over ``n`` random images made batch by batch."""

from __future__ import annotations

import torch

from benchmarks.deep_models import resnet18


def _batches(n: int, side: int, batch: int):  # noqa: ANN202
    g = torch.Generator().manual_seed(0)
    for start in range(0, n, batch):
        yield torch.randn(min(batch, n - start), 3, side, side, generator=g)


def top9_of_every_stage(n: int, side: int = 96, width: int = 16) -> int:
    """The top-9 of all five stages over ``n`` streamed images; returns the images seen."""
    from nnsee.methods.dataset_views.top_images import top_images_per_layer

    torch.set_num_threads(1)
    model = resnet18(num_classes=10, width=width)
    tops = top_images_per_layer(model, lambda: _batches(n, side, 50), ["conv1", "layer1", "layer2", "layer3",
                                                                       "layer4"], k=9)
    return tops["conv1"].n_images


def grad_cam_of_every_stage(n: int, side: int = 128, width: int = 32) -> int:
    """Grad-CAM of four stages for ``n`` images (the chunk size its own); returns the maps made."""
    from nnsee.methods.attribution.grad_cam import grad_cams

    torch.set_num_threads(1)
    model = resnet18(num_classes=10, width=width)
    x = torch.randn(n, 3, side, side, generator=torch.Generator().manual_seed(0))
    cams = grad_cams(model, x, torch.arange(n) % 10, ["layer1", "layer2", "layer3", "layer4"])
    return len(cams["layer1"])
