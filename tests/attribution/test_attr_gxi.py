"""Gradient × input against Captum's InputXGradient; the dot-product contribution map of a linear model."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from attribution.cnn_models import Dense, assert_captum_close, random_cnn, random_images, softmax_wrapped

from nnsee.methods.attribution.gradient_x_input import gradient_x_input

captum_attr = pytest.importorskip("captum.attr")


@pytest.mark.parametrize("shape,dtype", [((1, 10, 10), torch.float64), ((3, 10, 10), torch.float64),
                                         ((1, 12, 12), torch.float32)])
def test_gradient_x_input_equals_captum(shape, dtype):
    model = random_cnn(shape, hidden=5, dtype=dtype)
    x, target = random_images(4, shape, dtype=dtype), [3, 0, 2, 2]
    ref = captum_attr.InputXGradient(model).attribute(x, target=target)
    ours = gradient_x_input(model, x, target)
    assert ours.dtype == x.numpy().dtype  # the model's
    assert_captum_close(ours, ref)
    ref = captum_attr.InputXGradient(softmax_wrapped(model)).attribute(x, target=1)
    assert_captum_close(gradient_x_input(model, x, 1, output="softmax"), ref)


def test_gradient_x_input_of_a_linear_model_is_the_weight_times_the_pixel():
    model = Dense((1, 4, 4), 3).double()
    x = random_images(2, (1, 4, 4))
    ours = gradient_x_input(model, x, 2)
    w = model[1].weight[2].detach().numpy().reshape(1, 4, 4)
    np.testing.assert_allclose(ours, w * x.numpy(), rtol=1e-6)
