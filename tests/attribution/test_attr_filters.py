"""First-layer filters and feature maps (against Captum's LayerActivation), with in-place ReLUs, and errors."""

from __future__ import annotations

import numpy as np
import pytest
from attribution.cnn_models import Dense, assert_captum_close, functional_cnn, random_cnn, random_images

from nnsee.methods.attribution.feature_maps import feature_maps
from nnsee.methods.attribution.filters import first_layer_filters
from nnsee.methods.base import MethodError

captum_attr = pytest.importorskip("captum.attr")


def test_first_layer_filters_are_the_first_conv_weights():
    model = random_cnn((3, 10, 10), channels=(5, 4))
    filters = first_layer_filters(model)
    assert filters.shape == (5, 3, 3, 3) and filters.dtype == np.float64  # the model's dtype
    np.testing.assert_allclose(filters, model.conv1.weight.detach().numpy(), rtol=1e-6)
    np.testing.assert_allclose(first_layer_filters(model, "conv2"), model.conv2.weight.detach().numpy(), rtol=1e-6)


def test_filters_errors():
    with pytest.raises(MethodError, match="first_layer_filters needs a convolutional model; this Dense has no"):
        first_layer_filters(Dense())
    with pytest.raises(MethodError, match="layer 'relu1' is a ReLU, not an nn.Conv2d"):
        first_layer_filters(random_cnn(), "relu1")


@pytest.mark.parametrize("layer", ["conv1", "pool1", "conv2"])
def test_feature_maps_equal_captum_layer_activation(layer):
    model = random_cnn((3, 10, 10), channels=(3, 4))
    x = random_images(2, (3, 10, 10))
    ref = captum_attr.LayerActivation(model, getattr(model, layer)).attribute(x)
    assert_captum_close(feature_maps(model, x, layer), ref)


def test_feature_maps_before_an_inplace_relu_keep_their_negative_values():
    model = functional_cnn(c=1).train()
    x = random_images(2, (1, 8, 8))
    maps = feature_maps(model, x, "conv2")
    expected = model.conv2(model.conv1(x).relu()).detach().numpy()
    assert (expected < 0).any()
    np.testing.assert_allclose(maps, expected, rtol=1e-6, atol=1e-7)
    assert model.training and not model.conv2._forward_hooks
    with pytest.raises(MethodError, match="the model has no layer 'conv3'; its layers are: conv1, conv2, relu2, out"):
        feature_maps(model, x, "conv3")
