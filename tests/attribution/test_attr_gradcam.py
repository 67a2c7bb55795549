"""Grad-CAM against Captum's LayerGradCam (before upsampling), and its errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
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


def bilinear(small: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear resize of maps (N, h, w) from the definition, in float64: output pixel i's centre i + 0.5 sits at
    input coordinate (i + 0.5) · h / height − 0.5 (half-pixel centres; clamped to 0 below), which is interpolated
    between its two neighbouring input pixels, the last pixel repeated past the edge."""
    n, h, w = small.shape

    def taps(i: int, size_in: int, size_out: int) -> tuple[int, int, float]:
        src = max((i + 0.5) * size_in / size_out - 0.5, 0.0)
        lo = min(int(np.floor(src)), size_in - 1)
        return lo, min(lo + 1, size_in - 1), src - lo

    out = np.zeros((n, height, width))
    for i in range(height):
        y0, y1, ly = taps(i, h, height)
        for j in range(width):
            x0, x1, lx = taps(j, w, width)
            out[:, i, j] = ((1 - ly) * ((1 - lx) * small[:, y0, x0] + lx * small[:, y0, x1])
                            + ly * ((1 - lx) * small[:, y1, x0] + lx * small[:, y1, x1]))
    return out


@pytest.mark.parametrize("shape", [(1, 12, 12), (3, 13, 11)])
def test_grad_cam_upsampled_to_the_input_bilinearly(shape):
    """Against a bilinear resize written from the definition, and Captum's ``LayerAttribution.interpolate(...,
    "bilinear")`` (``F.interpolate`` with its default ``align_corners=False``: half-pixel centres, as cv2.resize)."""
    model = random_cnn(shape)
    x = random_images(2, shape)
    small = grad_cam(model, x, 1)
    big = grad_cam(model, x, 1, upsample=True)
    assert small.shape == (2, shape[1] // 2, shape[2] // 2) and big.shape == (2, *shape[1:])
    assert big.dtype == np.float64 and np.abs(big).max() > 1e-3
    scale = np.abs(big).max()
    np.testing.assert_allclose(big, bilinear(small, *shape[1:]), rtol=0, atol=1e-12 * scale)
    captum = captum_attr.LayerAttribution.interpolate(torch.as_tensor(small)[:, None], shape[1:], "bilinear")
    np.testing.assert_allclose(big, captum[:, 0].numpy(), rtol=0, atol=1e-12 * scale)


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
