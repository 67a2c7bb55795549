"""Integrated gradients against Captum (Gauss–Legendre and trapezoid points, convergence delta, chunking)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from attribution.cnn_models import assert_captum_close, random_cnn, random_images, softmax_wrapped

from nnsee.methods.attribution.integrated_gradients import ig_batch_size, integrated_gradients, step_points
from nnsee.methods.base import MethodError

captum_attr = pytest.importorskip("captum.attr")
approximation = pytest.importorskip("captum.attr._utils.approximation_methods")


@pytest.mark.parametrize("quadrature", ["gausslegendre", "riemann_trapezoid", "riemann_left", "riemann_middle",
                                    "riemann_right"])
def test_step_points_are_captums(quadrature):
    sizes, alphas = approximation.approximation_parameters(quadrature)
    ours_alphas, ours_weights = step_points(quadrature, 7)
    np.testing.assert_array_equal(ours_alphas, alphas(7))
    np.testing.assert_allclose(ours_weights, sizes(7), rtol=1e-15)


@pytest.mark.parametrize("quadrature", ["gausslegendre", "riemann_trapezoid"])
@pytest.mark.parametrize("shape,dtype,batch_size", [((1, 10, 10), torch.float64, None),
                                                    ((3, 10, 10), torch.float64, 7),
                                                    ((3, 10, 10), torch.float32, 5)])
def test_integrated_gradients_and_delta_equal_captum(quadrature, shape, dtype, batch_size):
    model = random_cnn(shape, dtype=dtype)
    x, target = random_images(3, shape, dtype=dtype), [1, 0, 3]
    ref, ref_delta = captum_attr.IntegratedGradients(model).attribute(
        x, target=target, n_steps=8, method=quadrature, return_convergence_delta=True)
    result = integrated_gradients(model, x, target, steps=8, quadrature=quadrature, batch_size=batch_size)
    assert result.attributions.dtype == x.numpy().dtype and result.delta.shape == (3,)
    assert_captum_close(result.attributions, ref)
    # delta is a small difference of scores: compare it on the scale of the scores
    scale = float(model(x).detach().abs().max())
    np.testing.assert_allclose(result.delta, ref_delta.detach().numpy(), atol=1e-5 * scale)


def test_integrated_gradients_with_an_image_baseline_and_softmax_target():
    shape = (3, 10, 10)
    model = random_cnn(shape, seed=3)
    x, baseline = random_images(2, shape), random_images(1, shape, seed=9)
    wrapped = softmax_wrapped(model)
    ref, ref_delta = captum_attr.IntegratedGradients(wrapped).attribute(
        x, baselines=baseline, target=2, n_steps=10, return_convergence_delta=True)
    result = integrated_gradients(model, x, 2, baseline=baseline[0].numpy(), steps=10, output="softmax")
    assert_captum_close(result.attributions, ref)
    np.testing.assert_allclose(result.delta, ref_delta.numpy(), atol=1e-7)
    # completeness: with many steps, Σ attributions → f(x) − f(baseline)
    fine = integrated_gradients(model, x, 2, baseline=baseline[0].numpy(), steps=64, output="softmax")
    assert np.abs(fine.delta).max() < np.abs(result.delta).max() + 1e-12


def test_chunk_size_does_not_change_the_result_and_train_mode_is_kept():
    model = random_cnn().train()
    x = random_images(3, (1, 10, 10))
    runs = [integrated_gradients(model, x, 0, steps=6, batch_size=b) for b in (1, 4, 100)]
    for r in runs[1:]:
        np.testing.assert_allclose(r.attributions, runs[0].attributions, rtol=1e-6, atol=1e-9)
    assert model.training
    assert ig_batch_size((3, 128, 128)) == 16
    assert ig_batch_size((3, 512, 512)) == 1
    assert ig_batch_size((1, 28, 28)) == 512


def test_integrated_gradients_errors():
    model, x = random_cnn(), random_images(2, (1, 10, 10))
    with pytest.raises(MethodError, match="quadrature must be one of gausslegendre, riemann_left"):
        integrated_gradients(model, x, 0, quadrature="simpson")
    with pytest.raises(MethodError, match="riemann_trapezoid needs steps ≥ 2, got 1"):
        integrated_gradients(model, x, 0, steps=1, quadrature="riemann_trapezoid")
    with pytest.raises(MethodError, match=r"the baseline must be a number or broadcast to the inputs \(2, 1, 10, 10\)"):
        integrated_gradients(model, x, 0, baseline=np.zeros((3, 10, 10)))
    with pytest.raises(MethodError, match="batch_size must be at least 1"):
        integrated_gradients(model, x, 0, batch_size=0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_conv_first_with_an_in_place_relu_after_it_and_a_hooked_model_equal_captum(dtype):
    """The pull-back through the first layer (a Sequential starting with a convolution) keeps an in-place second
    layer working and the input untouched; a hooked model takes the general path; all give Captum's numbers (8
    Riemann midpoints: weights exact in float32, which Captum casts them to)."""
    torch.manual_seed(4)
    layers = [torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2), torch.nn.Flatten(),
              torch.nn.Linear(4 * 4 * 4, 3)]
    plain = torch.nn.Sequential(*layers).to(dtype).eval()
    inplace = torch.nn.Sequential(layers[0], torch.nn.ReLU(inplace=True), *layers[2:]).to(dtype).eval()
    x = random_images(2, (3, 8, 8), seed=5, dtype=dtype)
    kept = x.clone()
    ref = captum_attr.IntegratedGradients(plain).attribute(x, target=[2, 1], n_steps=8, method="riemann_middle")
    hooked = torch.nn.Sequential(*layers).to(dtype).eval()
    hooked.register_forward_hook(lambda module, inputs, out: None)
    for model in (inplace, hooked, plain):
        got = integrated_gradients(model, x, [2, 1], steps=8, quadrature="riemann_middle", batch_size=3)
        assert got.attributions.dtype == x.numpy().dtype
        np.testing.assert_allclose(got.attributions, ref.detach().numpy(), rtol=0,
                                   atol=(1e-6 if dtype == torch.float32 else 1e-12) * float(ref.abs().max()))
    assert torch.equal(x, kept)
