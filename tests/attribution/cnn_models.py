"""Tiny CNNs for the attribution tests: random ones to compare with Captum, hand-weighted ones with known answers."""

from __future__ import annotations

import itertools

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nnsee.models.cnn import CNN


def random_cnn(shape: tuple[int, int, int] = (1, 10, 10), n_classes: int = 4, channels: tuple[int, ...] = (3, 4),
               kernel: int = 3, hidden: int = 0, seed: int = 0, dtype: torch.dtype = torch.float64) -> CNN:
    """nnsee's CNN with random weights (biases too), in eval mode, float64 unless asked."""
    torch.manual_seed(seed)
    model = CNN(shape, n_classes, channels=channels, kernel=kernel, hidden=hidden).to(dtype)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.5)
    return model.eval()


def random_images(n: int, shape: tuple[int, int, int], seed: int = 1, dtype: torch.dtype = torch.float64
                  ) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    return torch.as_tensor(rng.normal(size=(n, *shape)), dtype=dtype)


class FunctionalCNN(nn.Module):
    """conv → F.relu → conv → in-place ReLU module → mean pool → linear: ReLUs written the two other ways."""

    def __init__(self, c: int = 1, n_classes: int = 3) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c, 3, 3, padding=1)
        self.conv2 = nn.Conv2d(3, 4, 3, padding=1)
        self.relu2 = nn.ReLU(inplace=True)
        self.out = nn.Linear(4, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.relu2(self.conv2(F.relu(self.conv1(x))))
        return self.out(h.mean(dim=(2, 3)))


def assert_captum_close(ours: np.ndarray, ref: torch.Tensor | np.ndarray, rel: float = 1e-5) -> None:
    """max |ours − Captum| ≤ rel · max |Captum| (the issue's criterion), shapes equal."""
    ref = ref.detach().cpu().numpy() if isinstance(ref, torch.Tensor) else np.asarray(ref)
    assert ours.shape == ref.shape, (ours.shape, ref.shape)
    scale = np.abs(ref).max()
    assert scale > 0
    err = np.abs(ours.astype(np.float64) - ref).max()
    assert err <= rel * scale, f"max |ours - captum| = {err:.3g} > {rel} * {scale:.3g}"


class RegionSum(nn.Module):
    """Hand-weighted: class 0's logit is ``scale · Σ x[:, :, r0:r1, c0:c1]`` (the sum of one region), class 1's is a
    constant ``other``.

    A 1×1 "conv" layer ``conv`` copies the image into channel 0 and its negative into channel 1, so the feature map
    with the strongest response on a positive image is channel 0, and its total activity is the image sum.
    """

    def __init__(self, region: tuple[int, int, int, int], scale: float = 1.0, other: float = 0.0) -> None:
        super().__init__()
        self.region = region
        self.scale = scale
        self.other = other
        self.conv = nn.Conv2d(1, 2, 1, bias=False)
        with torch.no_grad():
            self.conv.weight.copy_(torch.tensor([1.0, -1.0]).view(2, 1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv(x)
        r0, r1, c0, c1 = self.region
        z0 = self.scale * h[:, 0, r0:r1, c0:c1].sum(dim=(1, 2))
        return torch.stack([z0, torch.full_like(z0, self.other)], dim=1)


class Dense(nn.Sequential):
    """No convolution at all: Flatten → Linear."""

    def __init__(self, shape: tuple[int, int, int] = (1, 4, 4), n_classes: int = 3) -> None:
        super().__init__(nn.Flatten(), nn.Linear(int(np.prod(shape)), n_classes))


def softmax_wrapped(model: nn.Module) -> nn.Module:
    """What Captum needs to explain a probability: the model followed by a softmax over classes."""
    return nn.Sequential(model, nn.Softmax(dim=1)).eval()


def functional_cnn(c: int = 1, seed: int = 0) -> FunctionalCNN:
    torch.manual_seed(seed)
    return FunctionalCNN(c).double().eval()


def captum_occlusion64(model: nn.Module, x: torch.Tensor, window: tuple[int, int, int],
                       stride: tuple[int, int, int], target: object) -> np.ndarray:
    """Captum's occlusion in the model's dtype. Captum's ``Occlusion`` divides by the window counts after ``.float()``
    (``feature_ablation.py``), so its maps are float32 even for a float64 model: here each window's drop ``f(x) −
    f(x_occluded)`` comes from Captum's ``FeatureAblation`` (the window one feature, baseline 0), and the drops are
    averaged over the windows covering each element (Captum keeps a per-element count of covering windows and returns
    sum ÷ count). Windows whose indices agree modulo ``ceil(w / s)`` along every axis never overlap, so each such group
    is one ``FeatureAblation`` call (the elements no window of the group covers form one more feature, left out of the
    sums)."""
    from captum.attr import FeatureAblation

    starts = [list(range(0, max(d - w, 0) + s, s)) for d, w, s in zip(x.shape[1:], window, stride, strict=True)]
    groups = [-(-w // s) for w, s in zip(window, stride, strict=True)]
    total, count = torch.zeros_like(x), torch.zeros_like(x[:1])
    for group in itertools.product(*(range(g) for g in groups)):
        mask = torch.full_like(x[:1], -1, dtype=torch.long)
        chosen = [s[g::n] for s, g, n in zip(starts, group, groups, strict=True)]
        for k, (c0, y0, x0) in enumerate(itertools.product(*chosen)):
            mask[:, c0:c0 + window[0], y0:y0 + window[1], x0:x0 + window[2]] = k
        covered = mask >= 0
        mask[~covered] = int(mask.max()) + 1
        drops = FeatureAblation(model).attribute(x, target=target, feature_mask=mask, perturbations_per_eval=64)
        total += drops * covered
        count += covered
    return (total / count).detach().numpy()
