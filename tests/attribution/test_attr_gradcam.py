"""Grad-CAM against Captum's LayerGradCam (before upsampling), and its errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from attribution.cnn_models import (
    Dense,
    assert_captum_close,
    functional_cnn,
    random_cnn,
    random_images,
    softmax_wrapped,
)

from nnsee.methods.attribution.grad_cam import grad_cam
from nnsee.methods.base import MethodError, get_module

captum_attr = pytest.importorskip("captum.attr")


def captum_cam(model, layer, x, target, relu=True):
    cam = captum_attr.LayerGradCam(model, get_module(model, layer)).attribute(x, target=target,
                                                                              relu_attributions=relu)
    return cam.detach()


@pytest.mark.parametrize("shape,layer,dtype", [((1, 10, 10), "conv2", torch.float64),
                                               ((3, 10, 10), "conv2", torch.float64),
                                               ((3, 12, 12), "relu1", torch.float64),
                                               ((1, 12, 12), "conv2", torch.float32)])
def test_grad_cam_equals_captum_before_upsampling(shape, layer, dtype):
    model = random_cnn(shape, hidden=6, dtype=dtype)
    x, target = random_images(3, shape, dtype=dtype), [2, 0, 1]
    ref = captum_cam(model, layer, x, target)  # (N, 1, h, w)
    ours = grad_cam(model, x, target, layer=layer)
    assert ours.shape == (3, *ref.shape[2:]) and ours.dtype == x.numpy().dtype  # the model's
    assert_captum_close(ours, ref[:, 0])
    # Captum's default keeps negative evidence (no ReLU)
    assert_captum_close(grad_cam(model, x, target, layer=layer, relu=False), captum_cam(model, layer, x, target,
                                                                                       relu=False)[:, 0])


def test_grad_cam_softmax_target_and_inplace_relu_after_the_layer():
    model = functional_cnn(c=1)  # conv2 is followed by nn.ReLU(inplace=True)
    x = random_images(2, (1, 8, 8))
    ref = captum_cam(model, "conv2", x, [1, 2], relu=False)
    assert (ref < 0).any()  # the maps read are conv2's own output, not the in-place ReLU's
    assert_captum_close(grad_cam(model, x, [1, 2], layer="conv2", relu=False), ref[:, 0])
    ref = captum_cam(softmax_wrapped(model), "0.conv1", x, 0)
    assert_captum_close(grad_cam(model, x, 0, layer="conv1", output="softmax"), ref[:, 0])


def test_grad_cam_upsampled_to_the_input_bilinearly():
    model = random_cnn((1, 12, 12))
    x = random_images(2, (1, 12, 12))
    small = grad_cam(model, x, 1)
    big = grad_cam(model, x, 1, upsample=True)
    assert small.shape == (2, 6, 6) and big.shape == (2, 12, 12)
    expected = F.interpolate(torch.as_tensor(small)[:, None], size=(12, 12), mode="bilinear", align_corners=False)
    np.testing.assert_allclose(big, expected[:, 0].numpy(), rtol=1e-6, atol=1e-7)


def test_grad_cam_errors():
    x = random_images(1, (1, 4, 4))
    with pytest.raises(MethodError, match="grad_cam needs a convolutional model.*has no Conv layer"):
        grad_cam(Dense().double(), x, 0, layer="1")
    model = random_cnn()
    with pytest.raises(MethodError, match="the model has no layer 'conv9'; its layers are: conv1, relu1"):
        grad_cam(model, random_images(1, (1, 10, 10)), 0, layer="conv9")
    with pytest.raises(MethodError, match=r"needs a layer with feature maps .* 'flatten' gives \(1, 16\)"):
        grad_cam(model, random_images(1, (1, 10, 10)), 0, layer="flatten")
    assert not get_module(model, "conv2")._forward_hooks  # hooks released after errors too
