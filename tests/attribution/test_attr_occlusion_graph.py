"""Region recomputation through traced graphs: residual blocks, VGG, concatenations, branches the planner must
refuse, hooked containers. Every map equals full forward passes in float64 within 1e-12 of its largest value."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from attribution.cnn_models import captum_occlusion64, random_images
from torch import nn
from zoo import resnet18, vgg

from nnsee.methods.attribution.occlusion import occlusion
from nnsee.methods.attribution.occlusion_region import layout, region_plan
from nnsee.methods.base import MethodError


def both(model, x, target, **kw):
    return (occlusion(model, x, target, recompute="region", **kw),
            occlusion(model, x, target, recompute="full", **kw))


def assert_equal_maps(region, full):
    scale = np.abs(full).max()
    assert scale > 1e-6
    np.testing.assert_allclose(region, full, rtol=0, atol=1e-12 * scale)


def crop_nodes(model, x, window):
    with torch.no_grad():
        lay = layout(region_plan(model.eval()), x, window)
    return {name for name, mode in lay.mode.items() if mode == "crop"}, lay


@pytest.mark.parametrize("window,stride", [(8, 4), ((5, 9), (3, 7)), (24, 20)])
def test_resnet_region_equals_full_passes_through_residual_blocks(window, stride):
    model = resnet18(7, width=8, seed=3, dtype=torch.float64)
    x = random_images(2, (3, 96, 80), seed=5)
    region, full = both(model, x, [2, 5], window=window, stride=stride, batch_size=13)
    assert_equal_maps(region, full)
    crops, _ = crop_nodes(model, x[:1], window if isinstance(window, tuple) else (window, window))
    if window == 8:  # the stem and layer1's blocks (both branches and the additions) run on crops
        assert {"conv1", "maxpool", "layer1_0_conv2", "add", "add_1", "layer2_0_downsample_0"} <= crops


def test_vgg_region_equals_full_passes_and_captum():
    model = vgg(5, config="11", width=4, hidden=16, pool=2).double().eval()
    x = random_images(2, (3, 32, 32), seed=6)
    region, full = both(model, x, [1, 4], window=6, stride=5)
    assert_equal_maps(region, full)
    assert_equal_maps(region, captum_occlusion64(model, x, (3, 6, 6), (3, 5, 5), [1, 4]))
    crops, _ = crop_nodes(model, x[:1], (6, 6))
    assert "features_0" in crops and "avgpool" not in crops


class SqueezeExcite(nn.Module):
    """A residual block whose branch is scaled by a global average (squeeze-and-excitation): the scale depends on
    every position, so the product and everything after it run on whole copies."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=1)
        self.fc = nn.Linear(c, c)

    def forward(self, x):
        h = torch.relu(self.conv(x))
        s = torch.sigmoid(self.fc(h.mean(dim=(2, 3)))).view(-1, h.shape[1], 1, 1)
        return x + h * s


class Rolled(nn.Module):
    """A branch that shifts its map (``torch.roll``): not local; the other branch and the addition then run whole."""

    def forward(self, x):
        return x + torch.roll(x, shifts=3, dims=3)


class Inception(nn.Module):
    """Two branches of different reach concatenated along the channels."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.a = nn.Conv2d(c, 2, 1)
        self.b = nn.Conv2d(c, 3, 5, padding=2)
        self.pool = nn.MaxPool2d(3, stride=1, padding=1)

    def forward(self, x):
        return torch.cat([self.a(x), torch.relu(self.b(x)), self.pool(x)], dim=1)


def net(block: nn.Module, c_out: int, side: int) -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.ReLU(), block, nn.Conv2d(c_out, 4, 3, stride=2),
                         nn.Flatten(), nn.Linear(4 * ((side - 3) // 2 + 1) ** 2, 3)).double().eval()


@pytest.mark.parametrize("name", ["squeeze-excite", "roll", "inception"])
def test_branches_refused_or_followed_give_full_pass_maps(name):
    side = 12
    block, c_out = {"squeeze-excite": (SqueezeExcite(3), 3), "roll": (Rolled(), 3),
                    "inception": (Inception(3), 8)}[name]
    model = net(block, c_out, side)
    x = random_images(2, (2, side, side), seed=7)
    region, full = both(model, x, [0, 2], window=3, stride=2)
    assert_equal_maps(region, full)
    crops, lay = crop_nodes(model, x[:1], (3, 3))
    assert "_0" in crops  # the first conv always runs on crops
    if name == "squeeze-excite":
        assert {"_2_conv", "mul"} & crops == {"_2_conv"} and lay.mode["add"] == "whole"
    elif name == "roll":
        assert lay.mode["roll"] == "whole" and lay.mode["add"] == "whole"
    else:
        assert {"_2_a", "_2_b", "_2_pool", "cat"} <= crops


def test_a_hooked_container_sees_whole_activations_and_the_rest_stays_local():
    model = resnet18(5, width=8, seed=1, dtype=torch.float64)
    seen = []
    handle = model.layer2.register_forward_hook(lambda m, i, o: seen.append(tuple(o.shape[2:])))
    x = random_images(1, (3, 80, 80), seed=2)
    try:
        region, full = both(model, x, 3, window=8, stride=8)
        crops, lay = crop_nodes(model, x, (8, 8))
    finally:
        handle.remove()
    assert_equal_maps(region, full)
    assert seen and set(seen) == {(10, 10)}  # layer2 output of 80-px images, never a crop
    assert "layer1_1_conv2" in crops and lay.mode["layer2"] == "whole"


class Counting(nn.Module):
    """A forward whose Python state changes every call: the traced graph fixes it, so it does not reproduce the
    model and the planner must give up."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3, padding=1)
        self.out = nn.Linear(2 * 8 * 8, 2)
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return self.out(self.conv(x).flatten(1)) * self.calls


def test_a_trace_that_does_not_reproduce_the_model_gives_no_region_plan():
    model = Counting().double().eval()
    x = random_images(1, (1, 8, 8))
    with torch.no_grad():
        assert layout(region_plan(model), x, (2, 2)) is None
    with pytest.raises(MethodError, match="cannot recompute only the occluded region"):
        occlusion(model, x, 1, window=2, stride=2, recompute="region")


def test_skipped_work_is_the_fraction_of_multiply_adds_outside_the_crops():
    """conv 3×3 (1 → 4 channels) on 8×8 with a 2×2 occluder: the crop is 4×4 of 8×8; the linear layer runs whole.
    Per copy: conv 1·9·4 = 36 multiply-adds per output position; full 36·64 + 256·3, crops 36·16 + 256·3."""
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(256, 3)).eval()
    _, lay = crop_nodes(model, torch.zeros(1, 1, 8, 8), (2, 2))
    assert lay.flops == (36 * 16 + 768, 36 * 64 + 768)
    assert lay.skipped == pytest.approx(1 - 1344 / 3072)


def test_auto_takes_the_region_path_only_when_the_crops_skip_enough_work(monkeypatch):
    import importlib

    occ = importlib.import_module("nnsee.methods.attribution.occlusion")  # the package's name is the function
    built = []
    original = occ.RegionForward
    monkeypatch.setattr(occ, "RegionForward", lambda *a: built.append(1) or original(*a))
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(256, 3)).double().eval()
    x = random_images(1, (1, 8, 8))
    for window, skipped, region in (((2, 2), 0.5625, True), ((6, 6), 0.0, False)):  # 6×6: crops cover all 8×8
        built.clear()
        _, lay = crop_nodes(model, x, window)
        assert lay.skipped == pytest.approx(skipped)
        auto = occlusion(model, x, 1, window=window, stride=2)
        assert bool(built) == region
        assert_equal_maps(auto, occlusion(model, x, 1, window=window, stride=2, recompute="full"))
