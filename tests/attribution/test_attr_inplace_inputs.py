"""Models whose first layer works in place: every method leaves the caller's tensor and array untouched, and gives
the maps of the same model without in-place ops (Captum's, where Captum has the method). And every method returns
maps in the model's dtype: float64 maps of a float64 model equal Captum's to 1e-12 of the largest value."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from attribution.cnn_models import captum_occlusion64, random_images
from torch import nn

from nnsee.methods.attribution import (
    deconvnet,
    feature_maps,
    grad_cam,
    gradient_x_input,
    guided_backprop,
    integrated_gradients,
    occlusion,
    occlusion_maps,
    project_activation,
    saliency,
)
from nnsee.methods.dataset_views.projections import top9_projections
from nnsee.methods.dataset_views.top_images import top_images_per_channel

captum_attr = pytest.importorskip("captum.attr")
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:captum.*")


class Normalize(nn.Module):
    """``(x − 0.25) · 2``, in place on its input when ``inplace`` (not idempotent: a second pass changes it again)."""

    def __init__(self, inplace: bool) -> None:
        super().__init__()
        self.inplace = inplace

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.sub_(0.25).mul_(2.0) if self.inplace else (x - 0.25) * 2.0


FIRST = {"relu": nn.ReLU, "normalize": Normalize}


def model_pair(first: str) -> tuple[nn.Module, nn.Module]:
    """(model starting with an in-place layer, the same weights without in-place ops), float64, eval mode."""
    torch.manual_seed(0)
    layers = [nn.Conv2d(2, 3, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(),
              nn.Flatten(), nn.Linear(4 * 4 * 4, 3)]
    make = [lambda inplace: nn.Sequential(FIRST[first](inplace), *layers).double().eval()]
    return make[0](True), make[0](False)


TARGET = [2, 0]


def ours(name: str, model: nn.Module, x: np.ndarray | torch.Tensor) -> list[np.ndarray]:
    """The maps of method ``name`` (one or several arrays)."""
    if name == "saliency":
        return [saliency(model, x, TARGET, reduce="none"), saliency(model, x, TARGET)]
    if name == "gradient_x_input":
        return [gradient_x_input(model, x, TARGET)]
    if name == "integrated_gradients":
        # Riemann midpoints of 8 steps: weights and points exact in float32, which Captum casts its weights to
        return [integrated_gradients(model, x, TARGET, steps=8, quadrature="riemann_middle").attributions]
    if name == "guided_backprop":
        return [guided_backprop(model, x, TARGET)]
    if name == "deconvnet":
        return [deconvnet(model, x, TARGET)]
    if name == "grad_cam":
        return [grad_cam(model, x, TARGET, layer="4", relu=False)]
    if name == "occlusion":
        return [occlusion(model, x, TARGET, window=3, stride=2, recompute=r) for r in ("auto", "full")]
    if name == "occlusion_maps":
        maps = occlusion_maps(model, x, TARGET, window=3, stride=2, layer="4")
        return [maps.prob_true, maps.strongest_map_activity, maps.most_probable]
    if name == "project_activation":
        return [project_activation(model, x, "4", 1)]
    if name == "feature_maps":
        return [feature_maps(model, x, "4")]
    topk = top_images_per_channel(model, x, "4", k=2, batch_size=1)
    if not isinstance(model[0], nn.ReLU):  # receptive fields (for the projections' crops) follow known layers only
        return [topk.values, topk.image_index]
    return [topk.values, topk.image_index, top9_projections(model, x, topk).projections]


def captums(name: str, model: nn.Module, x: torch.Tensor) -> list[np.ndarray] | None:
    """Captum's maps for ``name`` on ``model`` (without in-place ops), laid out as :func:`ours`; None if none."""
    a = captum_attr
    if name == "saliency":
        g = a.Saliency(model).attribute(x, target=TARGET)
        return [g, g.amax(dim=1, keepdim=True)]
    if name == "gradient_x_input":
        return [a.InputXGradient(model).attribute(x, target=TARGET)]
    if name == "integrated_gradients":
        return [a.IntegratedGradients(model).attribute(x, target=TARGET, n_steps=8, method="riemann_middle")]
    if name == "guided_backprop":
        return [a.GuidedBackprop(model).attribute(x, target=TARGET)]
    if name == "deconvnet":
        return [a.Deconvolution(model).attribute(x, target=TARGET)]
    if name == "grad_cam":
        return [a.LayerGradCam(model, model[4]).attribute(x, target=TARGET)[:, 0]]
    if name == "occlusion":
        ref = captum_occlusion64(model, x, (2, 3, 3), (2, 2, 2), TARGET)
        assert np.abs(ref - a.Occlusion(model).attribute(x, sliding_window_shapes=(2, 3, 3), strides=(2, 2, 2),
                                                          target=TARGET).numpy()).max() <= 1e-6 * np.abs(ref).max()
        return [ref, ref]
    if name == "project_activation":
        peaks = a.LayerActivation(model, model[4]).attribute(x)[:, 1].flatten(1).argmax(1).tolist()
        return [torch.cat([a.NeuronDeconvolution(model, model[4]).attribute(x[i:i + 1], (1, p // 4, p % 4))
                           for i, p in enumerate(peaks)])]
    if name == "feature_maps":
        return [a.LayerActivation(model, model[4]).attribute(x)]
    return None


METHODS = ["saliency", "gradient_x_input", "integrated_gradients", "guided_backprop", "deconvnet", "grad_cam",
           "occlusion", "occlusion_maps", "project_activation", "feature_maps", "top_images_per_channel"]


def as_array(a: np.ndarray | torch.Tensor) -> np.ndarray:
    return a.detach().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)


def close(got: np.ndarray, want: np.ndarray | torch.Tensor, what: str) -> None:
    """Equal shapes and dtypes, and max |got − want| ≤ 1e-12 · max |want| (float64)."""
    want = as_array(want)
    assert got.shape == want.shape and got.dtype == want.dtype, (what, got.dtype, want.dtype)
    scale = max(np.abs(want).max(), 1e-300)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12 * scale, err_msg=what)


@pytest.mark.parametrize("first", ["relu", "normalize"])
@pytest.mark.parametrize("name", METHODS)
def test_inputs_untouched_and_maps_equal_those_without_in_place_ops(name, first):
    inplace, plain = model_pair(first)
    x = random_images(2, (2, 8, 8), seed=5)  # float64, as the model: no conversion, so no copy on the way
    kept = x.clone()
    array = x.numpy().copy()
    kept_array = array.copy()
    expected = ours(name, plain, x.clone())
    reference = captums(name, plain, x.clone())
    for given in (x, array):
        got = ours(name, inplace, given)
        for i, (g, e) in enumerate(zip(got, expected, strict=True)):
            close(g, e, f"{name} output {i} vs the model without in-place ops")
            if reference is not None:
                close(g, reference[i], f"{name} output {i} vs Captum")
    assert torch.equal(x, kept), "the caller's tensor was changed"
    assert np.array_equal(array, kept_array), "the caller's array was changed"


@pytest.mark.parametrize("name", [m for m in METHODS if m not in ("occlusion_maps", "top_images_per_channel")])
def test_float64_maps_of_a_float64_model_equal_captums(name):
    _, model = model_pair("relu")
    x = random_images(2, (2, 8, 8), seed=6)
    got, reference = ours(name, model, x), captums(name, model, x)
    assert np.abs(as_array(reference[0])).max() > 1e-3
    for i, (g, r) in enumerate(zip(got, reference, strict=True)):
        assert g.dtype == np.float64, (name, i, g.dtype)
        close(g, r, f"{name} output {i} vs Captum")


def test_occlusion_maps_in_float64_equal_forward_passes_on_the_occluded_copies():
    _, model = model_pair("normalize")
    x = random_images(1, (2, 8, 8), seed=7)
    maps = occlusion_maps(model, x, 1, window=5, stride=5, layer="4")
    assert maps.prob_true.dtype == maps.strongest_map_activity.dtype == np.float64
    for i, y in enumerate((0, 5)):
        for j, x0 in enumerate((0, 5)):
            copy = x.clone()
            copy[:, :, y:y + 5, x0:x0 + 5] = 0.0
            with torch.no_grad():
                p = model(copy).softmax(1)[0, 1]
                activity = model[:5](copy)[0, maps.strongest_channel[0]].sum()
            assert abs(maps.prob_true[0, i, j] - p.item()) <= 1e-15
            assert abs(maps.strongest_map_activity[0, i, j] - activity.item()) <= 1e-12 * abs(activity.item())


@pytest.mark.parametrize("name", METHODS)
def test_float32_models_give_float32_maps(name):
    model = model_pair("relu")[1].float()
    for g in ours(name, model, random_images(2, (2, 8, 8), seed=6, dtype=torch.float32)):
        assert g.dtype in (np.float32, np.int64), (name, g.dtype)


def test_float64_integrated_gradients_gauss_legendre_is_captums_up_to_its_float32_weights():
    """Captum multiplies by ``torch.tensor(step_sizes).float()``: its float64 maps carry float32-rounded weights."""
    _, model = model_pair("relu")
    x = random_images(2, (2, 8, 8), seed=6)
    got = integrated_gradients(model, x, TARGET, steps=20).attributions
    ref = captum_attr.IntegratedGradients(model).attribute(x, target=TARGET, n_steps=20).detach().numpy()
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-6 * np.abs(ref).max())
