"""Occlusion recomputing only the occluded region: equal to full forward passes on every kind of local layer."""

from __future__ import annotations

import importlib

import numpy as np
import pytest
import torch
from attribution.cnn_models import captum_occlusion64, random_cnn, random_images
from torch import nn

from nnsee.methods.attribution.occlusion import occlusion, region_cap
from nnsee.methods.attribution.occlusion_region import region_plan
from nnsee.methods.attribution.region_forward import RegionForward
from nnsee.methods.base import MethodError


def exotic(seed: int = 0) -> nn.Sequential:
    """Every kind of local layer: nested Sequentials, a strided conv, batch norm, an in-place ReLU, a dilated conv, a
    rectangular kernel, max pooling with padding, average pooling with padding, then a linear head."""
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Sequential(nn.Conv2d(2, 4, 3, stride=2, padding=1), nn.BatchNorm2d(4), nn.ReLU(inplace=True)),
        nn.Conv2d(4, 5, 3, dilation=2, padding=3), nn.LeakyReLU(0.1), nn.MaxPool2d(3, 2, padding=1),
        nn.AvgPool2d(2, padding=1), nn.Conv2d(5, 3, (3, 1), groups=1), nn.Tanh(),
        nn.Flatten(), nn.Linear(3 * 2 * 4, 4),
    ).double()
    with torch.no_grad():
        bn = model[0][1]
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 2.0)
        bn.weight.uniform_(0.5, 1.5)
    return model.eval()


def both(model, x, target, **kw):
    return (occlusion(model, x, target, recompute="region", **kw),
            occlusion(model, x, target, recompute="full", **kw))


@pytest.mark.parametrize("window,stride", [((3, 4), (2, 3)), ((2, 1), 1), ((21, 19), 1), ((1, 5, 3), (1, 4, 2)),
                                           ((5, 5), 5)])
def test_region_equals_full_forward_passes_on_every_local_layer_kind(window, stride):
    model = exotic()
    x = random_images(3, (2, 21, 19))
    plan = region_plan(model)
    assert plan is not None and len(plan.local) == 10 and "flatten" not in plan.local  # the input and 9 layers
    region, full = both(model, x, [0, 3, 1], window=window, stride=stride, batch_size=11,
                        baseline=random_images(1, (2, 21, 19), seed=4)[0].numpy())
    assert np.abs(full).max() > 1e-3
    np.testing.assert_allclose(region, full, rtol=0, atol=1e-12 * np.abs(full).max())


def test_region_scores_equal_model_outputs_copy_by_copy():
    """The engine's output for every occluded copy is the model's output on that copy (float64)."""
    model = random_cnn((3, 16, 12), channels=(4, 6), kernel=5, hidden=7)
    x = random_images(2, (3, 16, 12))
    with torch.no_grad():
        engine = RegionForward(region_plan(model), x, (3, 3))
        img = torch.tensor([0, 1, 1, 0, 1])
        y, x0 = torch.tensor([0, 13, 5, 2, 0]), torch.tensor([9, 0, 4, 9, 7])
        crops = random_images(5, (3, 3, 3), seed=9)
        copies = x[img].clone()
        for b in range(5):
            copies[b, :, y[b]:y[b] + 3, x0[b]:x0[b] + 3] = crops[b]
        np.testing.assert_allclose(engine.forward(img, y, x0, crops), model(copies), rtol=0, atol=1e-12)
        np.testing.assert_allclose(engine.scores, model(x), rtol=0, atol=1e-12)


def test_float32_region_stays_as_close_to_the_exact_map_as_full_passes():
    """The exact map is independent of the region path: full forward passes in float64, themselves equal to
    Captum's (float64 drops from FeatureAblation, averaged over the windows) to 1e-12."""
    pytest.importorskip("captum.attr")
    model = random_cnn((1, 28, 28), n_classes=10, channels=(16, 32), kernel=5)
    x64 = random_images(2, (1, 28, 28))
    exact = occlusion(model, x64, [3, 7], window=4, stride=1, recompute="full")
    captum = captum_occlusion64(model, x64, (1, 4, 4), (1, 1, 1), [3, 7])
    assert exact.dtype == np.float64
    np.testing.assert_allclose(exact, captum, rtol=0, atol=1e-12 * np.abs(captum).max())
    model32, x32 = model.float(), x64.float()
    region, full = both(model32, x32, [3, 7], window=4, stride=1)
    scale = np.abs(exact).max()
    err_region, err_full = np.abs(region - exact).max() / scale, np.abs(full - exact).max() / scale
    assert err_region < 1e-5 and err_region < 3 * err_full, (err_region, err_full)


def test_the_caller_images_are_left_alone_by_an_in_place_first_layer():
    model = nn.Sequential(nn.ReLU(inplace=True), nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(2 * 6 * 6, 3)).double()
    x = random_images(2, (1, 8, 8))
    kept = x.clone()
    region, full = both(model, x, 1, window=2, stride=2)
    assert torch.equal(x, kept)
    np.testing.assert_allclose(region, full, rtol=0, atol=1e-12)


class NotSequential(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3, padding=1)
        self.out = nn.Linear(2 * 8 * 8, 2)

    def forward(self, x):
        return self.out(self.conv(x).flatten(1))


class OwnForward(nn.Sequential):
    def forward(self, x):  # a skip connection around the chain: the flattened input is not local
        return super().forward(x) + x.flatten(1)[:, :2]


class DataDependent(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3, padding=1)
        self.out = nn.Linear(2 * 8 * 8, 2)

    def forward(self, x):
        h = self.conv(x)
        if h.sum() > 0:  # Python control flow on values: torch.fx cannot trace it
            h = -h
        return self.out(h.flatten(1))


def test_any_traced_model_with_a_conv_on_its_input_recomputes_regions():
    x = random_images(1, (1, 8, 8))
    for model in (NotSequential().double(), OwnForward(nn.Conv2d(1, 1, 3, padding=1), nn.Flatten(),
                                                       nn.Linear(64, 2)).double()):
        plan = region_plan(model)
        assert plan is not None and list(plan.local.values()) == ["input", "window"]
        region, full = both(model, x, 1, window=2, stride=2)
        np.testing.assert_allclose(region, full, rtol=0, atol=1e-12 * np.abs(full).max())


def test_models_without_a_local_start_run_full_passes_and_region_says_why():
    cases = [
        DataDependent().double(),
        nn.Sequential(nn.Flatten(), nn.Linear(64, 2)).double(),  # an MLP
        nn.Sequential(nn.Conv2d(1, 2, 3, padding=1, padding_mode="reflect"), nn.Flatten(),
                      nn.Linear(128, 2)).double(),
        nn.Sequential(nn.MaxPool2d(2, ceil_mode=True), nn.Flatten(), nn.Linear(16, 2)).double(),
    ]
    x = random_images(1, (1, 8, 8))
    for model in cases:
        assert region_plan(model) is None
        auto = occlusion(model, x, 1, window=2, stride=2)
        full = occlusion(model, x, 1, window=2, stride=2, recompute="full")
        np.testing.assert_allclose(auto, full, rtol=0, atol=1e-12 * np.abs(full).max())  # chunks may differ
        with pytest.raises(MethodError, match="cannot recompute only the occluded region: use recompute='full'"):
            occlusion(model, x, 1, window=2, stride=2, recompute="region")
    with pytest.raises(MethodError, match="recompute must be 'auto', 'region' or 'full', got 'fast'"):
        occlusion(cases[0], x, 1, recompute="fast")


class WeightStandardizedConv(nn.Conv2d):
    def _conv_forward(self, x, weight, bias):  # overrides the convolution itself, not forward
        return super()._conv_forward(x, weight - weight.mean(), bias)


def test_layers_the_plan_must_not_crop():
    torch.manual_seed(0)
    x = random_images(2, (1, 9, 9), dtype=torch.float32)
    seen = []
    hooked = nn.ReLU()
    hooked.register_forward_hook(lambda m, i, o: seen.append(tuple(o.shape)))
    cases = {  # model -> how many layers stay local
        "a hooked ReLU starts the tail": (nn.Sequential(nn.Conv2d(1, 2, 3), hooked, nn.Conv2d(2, 2, 3),
                                                        nn.Flatten(), nn.Linear(50, 2)), 1),
        "batch norm with batch statistics": (nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2, affine=False,
                                                           track_running_stats=False), nn.Flatten(),
                                                           nn.Linear(98, 2)), 1),
        "a conv overriding _conv_forward": (nn.Sequential(WeightStandardizedConv(1, 2, 3), nn.Flatten(),
                                                          nn.Linear(98, 2)), None),
        "a kernel-1 stride-2 conv (gaps between windows)": (nn.Sequential(nn.Conv2d(1, 2, 1, stride=2), nn.ReLU(),
                                                                          nn.Conv2d(2, 2, 3, padding=1),
                                                                          nn.Flatten(), nn.Linear(50, 2)), 3),
    }
    for name, (model, n_local) in cases.items():
        plan = region_plan(model)
        assert (None if plan is None else len(plan.local) - 1) == n_local, name  # local layers after the input
        model.eval()
        # the same chunks on both paths: batch statistics make a copy's score depend on the copies beside it
        region = occlusion(model, x, 1, window=2, stride=1, batch_size=16)
        np.testing.assert_allclose(region, occlusion(model, x, 1, window=2, stride=1, recompute="full",
                                                     batch_size=16), rtol=1e-5, atol=1e-6, err_msg=name)
    assert seen and all(shape[1:] == (2, 7, 7) for shape in seen)  # the hook saw whole activations only
    top = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(98, 2))
    top.register_forward_hook(lambda m, i, o: None)
    assert region_plan(top) is None  # the model's own hooks run only through its __call__


def test_the_plan_stops_at_the_first_non_local_layer():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.AdaptiveAvgPool2d(2), nn.Conv2d(2, 2, 1), nn.Flatten(),
                          nn.Linear(8, 2))
    plan = region_plan(model)
    assert plan is not None and list(plan.local.values()) == ["input", "window"]  # conv1 only
    x = random_images(2, (1, 9, 9), dtype=torch.float32)
    region, full = both(model, x, 0, window=3, stride=2)
    np.testing.assert_allclose(region, full, rtol=1e-5, atol=1e-6)


def test_region_cap_follows_the_largest_tensor_per_copy():
    model = random_cnn((1, 28, 28), n_classes=10, channels=(16, 32), kernel=5, dtype=torch.float32)
    with torch.no_grad():
        engine = RegionForward(region_plan(model), torch.zeros(1, 1, 28, 28), (4, 4))
    # pool2 reads a 10 × 10 window of 32 channels for a 4 × 4 occluder (crops 8, 5, 9 after conv1, pool1, conv2)
    assert engine.copy_elements() == 32 * 10 * 10
    assert region_cap(64 * 40 * 40) == 2**23 // (64 * 40 * 40)
    assert region_cap(10**9) == 1 and region_cap(1) == 1024


def test_images_are_processed_in_groups_that_bound_the_stored_activations(monkeypatch):
    occ = importlib.import_module("nnsee.methods.attribution.occlusion")  # the package's name is the function

    model = random_cnn((1, 10, 10), channels=(3, 4), kernel=3, hidden=5)
    x = random_images(5, (1, 10, 10))
    full = occlusion(model, x, [0, 1, 2, 3, 0], window=3, stride=2, recompute="full")
    with torch.no_grad():
        per_image = RegionForward(region_plan(model), x[:1], (3, 3)).stored_elements()
    monkeypatch.setattr(occ, "REGION_STORED", 2 * per_image)  # groups of 2, 2 and 1 images
    built = []
    monkeypatch.setattr(occ, "RegionForward", lambda plan, images: built.append(len(images)) or RegionForward(
        plan, images))
    region = occlusion(model, x, [0, 1, 2, 3, 0], window=3, stride=2, batch_size=4)
    assert built == [1, 2, 2, 1]  # the probe, then the groups
    np.testing.assert_allclose(region, full, rtol=0, atol=1e-12)


def test_occlusion_keeps_every_tensor_on_the_images_device(monkeypatch):
    """The grid's masks are built on the CPU; spreading the drops must move them to the drops' device (a CUDA run
    failed there). Checked here with a meta-device stand-in: ``spread`` must not mix devices."""
    from nnsee.methods.attribution.occlusion import occlusion_grid

    grid = occlusion_grid((1, 6, 6), (2, 2), 2)
    values = torch.ones(1, *grid.shape, device="meta")
    assert grid.spread(values).device.type == "meta"
