"""The region planner accepts a layer only when it can prove it local: subclasses that override ``forward`` end the
local prefix, and occlusion then equals full passes and Captum's Occlusion (float64)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from attribution.cnn_models import captum_occlusion64, random_images
from torch import nn

from nnsee.methods.attribution.occlusion import occlusion
from nnsee.methods.attribution.occlusion_region import region_plan

captum_attr = pytest.importorskip("captum.attr")


class CentredIdentity(nn.Identity):
    def forward(self, x):  # not elementwise: subtracts each map's spatial mean
        return x - x.mean(dim=(2, 3), keepdim=True)


class ContrastTanh(nn.Tanh):
    def forward(self, x):  # not elementwise: divides by each image's largest value
        return torch.tanh(x / x.abs().amax(dim=(1, 2, 3), keepdim=True))


class InstanceBatchNorm(nn.BatchNorm2d):
    def forward(self, x):  # not elementwise: normalizes with each map's own statistics
        return (x - x.mean(dim=(2, 3), keepdim=True)) / (x.std(dim=(2, 3), keepdim=True) + 1e-3)


class QuietBatchNorm(nn.BatchNorm2d):
    def _check_input_dim(self, x):  # harmless: forward is batch norm's, still elementwise with running statistics
        pass


class ShiftedReLU(nn.ReLU):
    pass  # inherits forward: elementwise


def model_with(layer: nn.Module, seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), layer, nn.Conv2d(3, 3, 3), nn.ReLU(), nn.Flatten(),
                         nn.Linear(3 * 8 * 8, 4)).double().eval()


@pytest.mark.parametrize("layer,local", [(CentredIdentity(), False), (ContrastTanh(), False),
                                         (InstanceBatchNorm(3), False), (QuietBatchNorm(3), True),
                                         (ShiftedReLU(), True)])
def test_subclasses_overriding_forward_end_the_local_prefix(layer, local):
    model = model_with(layer)
    x = random_images(2, (2, 10, 10))
    window, stride = (3, 3), (2, 1)
    captum32 = captum_attr.Occlusion(model).attribute(x, sliding_window_shapes=(2, *window), strides=(2, *stride),
                                                      target=[1, 3], perturbations_per_eval=64).numpy()
    ref = captum_occlusion64(model, x, (2, *window), (2, *stride), [1, 3])  # Captum's Occlusion returns float32
    scale = np.abs(ref).max()
    assert scale > 1e-3 and np.abs(captum32 - ref).max() <= 1e-6 * scale
    for recompute in ("auto", "full", "region"):
        ours = occlusion(model, x, [1, 3], window=window, stride=stride, recompute=recompute)
        np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-12 * scale, err_msg=recompute)
    plan = region_plan(model)  # the input, conv, [layer, conv, ReLU]: only what the planner can prove local
    assert plan is not None and len(plan.local) == (5 if local else 2)
