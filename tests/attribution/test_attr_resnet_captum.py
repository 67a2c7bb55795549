"""Every registered attribution method on a ResNet-18-shaped model at 3x224x224 equals Captum 0.9 called directly.

The model (``tests/zoo.py``): BasicBlocks, eval-mode BatchNorm with non-trivial running statistics, residual adds,
in-place ``nn.ReLU`` modules each used once, adaptive average pooling, 1000 classes; random weights. Each method runs
through ``nnsee.methods.attribution.registry.attribute`` (the one entry point of the CLI, report and live page) and
is compared with the Captum class that computes the same numbers: ``max |ours − Captum| ≤ rel · max |Captum|`` with
rel = 1e-10 in float64 where Captum keeps float64 and 1e-5 in float32 (the issue's criterion).

Where nnsee's convention differs from Captum's default, the Captum side is told: saliency is maxed over channels
(Simonyan et al.; Captum keeps channels), Grad-CAM is rectified (``relu_attributions=True``) and drops the channel
axis. Integrated gradients use 2 Gauss–Legendre points (weights 1/2: exact in the float32 to which Captum casts its
step weights, so float64 keeps float64 precision). Occlusion: Captum's ``Occlusion`` divides in float32
(``feature_ablation.py``), so float64 maps are compared with it at float32 precision and, to 1e-10, with the same
windows' drops from Captum's ``FeatureAblation`` averaged over the covering windows (``captum_occlusion64``); both of
nnsee's recompute paths (full passes for the ResNet as written, the local-region path for the same modules as an
``nn.Sequential``). Cost: about a hundred forward/backward passes of ResNet-18 at batch 2, and ~150 occluded copies
at width 16.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any
from unittest import mock

import captum.attr as captum_attr  # a hard import: the comparison must never be skipped
import numpy as np
import pytest
import torch
from attribution.cnn_models import captum_occlusion64
from torch import nn
from zoo import photo_like, resnet18, sequential_resnet18

from nnsee.methods.attribution import registry
from nnsee.methods.attribution.occlusion import occlusion
from nnsee.methods.attribution.occlusion_region import region_plan
from nnsee.models.hooks import get_module

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:captum.*")

TARGETS = [3, 917]
REL = {torch.float64: 1e-10, torch.float32: 1e-5}
DTYPES = [torch.float64, torch.float32]


@pytest.fixture(scope="module", params=DTYPES, ids=["float64", "float32"])
def case(request: pytest.FixtureRequest) -> tuple[nn.Module, torch.Tensor, torch.dtype]:
    """ResNet-18 (width 64, 1000 classes) and two 3x224x224 images in one dtype."""
    dtype = request.param
    model = resnet18(1000, seed=0, dtype=dtype)
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(bns) == 20 and all(not m.training for m in model.modules())
    assert all((m.running_var - 1).abs().max() > 0.1 and m.running_mean.abs().max() > 0.1 for m in bns)
    return model, photo_like(2, 224, seed=1, dtype=dtype), dtype


def close(ours: np.ndarray, theirs: torch.Tensor, rel: float, what: str = "") -> None:
    """Equal shapes and dtypes; max |ours − Captum| ≤ rel · max |Captum| (and the maps are not all zero)."""
    want = theirs.detach().numpy()
    assert ours.shape == want.shape and ours.dtype == want.dtype, (ours.shape, ours.dtype, want.shape, want.dtype)
    scale = float(np.abs(want).max())
    assert scale > 0
    err = float(np.abs(ours - want).max())
    assert err <= rel * scale, f"{what}: max |ours - captum| = {err:.3g} > {rel:g} * {scale:.3g}"


GRADIENT_METHODS: dict[str, Callable[[nn.Module, torch.Tensor], torch.Tensor]] = {
    "saliency": lambda m, x: captum_attr.Saliency(m).attribute(x, target=TARGETS, abs=True).amax(1, keepdim=True),
    "gradient-x-input": lambda m, x: captum_attr.InputXGradient(m).attribute(x, target=TARGETS),
    "guided-backprop": lambda m, x: captum_attr.GuidedBackprop(m).attribute(x, target=TARGETS),
    "deconvnet": lambda m, x: captum_attr.Deconvolution(m).attribute(x, target=TARGETS),
}


@pytest.mark.parametrize("name", sorted(GRADIENT_METHODS))
def test_gradient_methods_equal_captum(case: tuple[nn.Module, torch.Tensor, torch.dtype], name: str) -> None:
    """Guided backprop and the deconvnet pass 20 eval BatchNorms and 8 residual adds with Captum's numbers."""
    model, x, dtype = case
    ours = registry.attribute(name, model, x.numpy(), TARGETS).maps
    close(ours, GRADIENT_METHODS[name](model, x.clone()), REL[dtype])


@pytest.mark.parametrize("layer", ["layer2", "layer4", None])
def test_grad_cam_at_two_stages_and_the_default_layer_equals_captum(
        case: tuple[nn.Module, torch.Tensor, torch.dtype], layer: str | None) -> None:
    """Stage outputs (after a block's residual add and ReLU), 28x28 and 7x7; None: the last conv, 7x7."""
    model, x, dtype = case
    result = registry.attribute("grad-cam", model, x.numpy(), TARGETS, layer=layer)
    used = result.extras["layer"]
    assert used == (layer or "layer4.1.conv2")
    theirs = captum_attr.LayerGradCam(model, get_module(model, used)).attribute(x.clone(), target=TARGETS,
                                                                                relu_attributions=True)
    assert theirs.shape[2:] == ((28, 28) if layer == "layer2" else (7, 7))
    close(result.maps, theirs[:, 0], REL[dtype])


def test_integrated_gradients_equal_captum(case: tuple[nn.Module, torch.Tensor, torch.dtype]) -> None:
    model, x, dtype = case
    steps = 2  # Gauss-Legendre weights 1/2: exact in the float32 to which Captum casts them
    result = registry.attribute("integrated-gradients", model, x.numpy(), TARGETS, steps=steps)
    theirs, delta = captum_attr.IntegratedGradients(model).attribute(
        x.clone(), target=TARGETS, n_steps=steps, method="gausslegendre", return_convergence_delta=True)
    close(result.maps, theirs, REL[dtype])
    scores = float(model(x).detach().abs().max())  # delta is a difference of scores: compared on their scale
    np.testing.assert_allclose(result.extras["convergence_delta"], delta.detach().numpy(), rtol=0,
                               atol=REL[dtype] * scores)


class _MaxSaliency(captum_attr.Saliency):
    """Captum's Saliency maxed over channels (nnsee's saliency), as a base NoiseTunnel can smooth."""

    def attribute(self, inputs: torch.Tensor, target: Any = None, **kwargs: Any) -> torch.Tensor:
        return captum_attr.Saliency.attribute.__wrapped__(self, inputs, target=target, abs=True).amax(1, keepdim=True)

    attribute.__wrapped__ = attribute  # NoiseTunnel calls attribute.__wrapped__ (Captum's usage-log decorator)


SMOOTHED = {"saliency": _MaxSaliency, "gradient-x-input": captum_attr.InputXGradient}


@pytest.mark.parametrize("base,kind", [("saliency", "smoothgrad"), ("gradient-x-input", "vargrad")])
def test_smoothgrad_equals_captum_noise_tunnel_fed_our_noise(
        case: tuple[nn.Module, torch.Tensor, torch.dtype], base: str, kind: str) -> None:
    """The registered smoothgrad (its own seeded noise) against NoiseTunnel given the noisy copies nnsee drew: a
    spy on the base method records them, and Captum's ``torch.normal`` returns the same noise, image-major."""
    model, x, dtype = case
    samples, seen = 2, []
    method = registry.METHODS[base]

    def spy(model: nn.Module, noisy: Any, target: Any, output: str) -> Any:
        seen.append(torch.as_tensor(np.asarray(noisy)))
        return method.run(model, noisy, target, output)

    with mock.patch.dict(registry.METHODS, {base: dataclasses.replace(method, run=spy)}):
        ours = registry.attribute("smoothgrad", model, x.numpy(), TARGETS, base=base, kind=kind, samples=samples,
                                  seed=7).maps
    noisy = torch.cat(seen).reshape(samples, len(x), *x.shape[1:])  # sample-major rows: s * n + i
    noise = (noisy - x).transpose(0, 1).reshape(-1, *x.shape[1:])  # Captum's rows: i * samples + s
    assert float(noise.std()) > 0.05
    with mock.patch("torch.normal", lambda *_a, **_k: noise.clone()):
        theirs = captum_attr.NoiseTunnel(SMOOTHED[base](model)).attribute(
            x.clone(), nt_type=kind, nt_samples=samples, stdevs=1.0, target=TARGETS)
    close(ours, theirs, REL[dtype])


# --------------------------------------------------------------------------------------------------------- occlusion
WINDOW, STRIDE = 64, 48  # 5 x 5 positions on 224 px, overlapping, the last row and column cut off at the border


@pytest.fixture(scope="module")
def narrow() -> tuple[nn.Module, nn.Sequential, torch.Tensor]:
    """ResNet-18's shape at width 16 (a sixteenth of the work per pass), float64, 10 classes, one image; and the
    same modules as an nn.Sequential."""
    model = resnet18(10, width=16, seed=2, dtype=torch.float64)
    return model, sequential_resnet18(model), photo_like(1, 224, seed=3, dtype=torch.float64)


def test_occlusion_equals_captum_on_both_recompute_paths(narrow: tuple[nn.Module, nn.Sequential, torch.Tensor]
                                                         ) -> None:
    model, chain, x = narrow
    for net in (model, chain):  # the ResNet as written (residual blocks traced by torch.fx) and as a Sequential
        plan = region_plan(net)
        assert plan is not None and sum(kind == "binary" for kind in plan.local.values()) == 8  # every block's +
    torch.testing.assert_close(chain(x), model(x), rtol=0, atol=0)
    target = 4
    exact = torch.as_tensor(captum_occlusion64(model, x, (3, WINDOW, WINDOW), (3, STRIDE, STRIDE), target))
    theirs = captum_attr.Occlusion(model).attribute(x, sliding_window_shapes=(3, WINDOW, WINDOW),
                                                    strides=(3, STRIDE, STRIDE), target=target,
                                                    perturbations_per_eval=16)
    assert theirs.dtype == torch.float32  # Captum divides by the window counts in float32
    maps = {
        "region (auto)": registry.attribute("occlusion", model, x.numpy(), target, window=WINDOW, stride=STRIDE).maps,
        "region, Sequential (auto)": registry.attribute("occlusion", chain, x.numpy(), target, window=WINDOW,
                                                        stride=STRIDE).maps,
        "full": occlusion(model, x.numpy(), target, window=WINDOW, stride=STRIDE, recompute="full"),
    }
    for path, ours in maps.items():
        close(ours, exact, REL[torch.float64], path)
        close(ours.astype(np.float32), theirs, 1e-6, path)


def test_occlusion_float32_equals_captum() -> None:
    model = resnet18(10, width=16, seed=2, dtype=torch.float32)
    x = photo_like(1, 224, seed=3, dtype=torch.float32)
    theirs = captum_attr.Occlusion(model).attribute(x, sliding_window_shapes=(3, WINDOW, WINDOW),
                                                    strides=(3, STRIDE, STRIDE), target=1, perturbations_per_eval=16)
    for net in (model, sequential_resnet18(model)):
        close(registry.attribute("occlusion", net, x.numpy(), 1, window=WINDOW, stride=STRIDE).maps, theirs,
              REL[torch.float32])


@pytest.mark.parametrize("name", ["guided-backprop", "deconvnet"])
def test_torchvision_blocks_one_relu_called_twice_give_captums_numbers_of_the_unshared_model(name: str) -> None:
    """torchvision's BasicBlock calls one in-place ``relu`` module twice; the rule must apply at both calls. Same
    weights (the same state dict) with a ReLU module per call: Captum's numbers there, nnsee's on both models."""
    shared = resnet18(1000, seed=4, dtype=torch.float64, shared_relu=True)
    unshared = resnet18(1000, seed=4, dtype=torch.float64)
    assert sum(isinstance(m, nn.ReLU) for m in shared.modules()) == 9
    x = photo_like(2, 224, seed=5, dtype=torch.float64)
    ours = registry.attribute(name, shared, x.numpy(), TARGETS).maps
    close(ours, GRADIENT_METHODS[name](unshared, x.clone()), REL[torch.float64], "shared relu")
