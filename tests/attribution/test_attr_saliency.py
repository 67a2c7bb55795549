"""Saliency against Captum's Saliency(abs=True), and the Simonyan max over channels."""

from __future__ import annotations

import pytest
import torch
from attribution.cnn_models import assert_captum_close, functional_cnn, random_cnn, random_images, softmax_wrapped

from nnsee.methods.attribution.saliency import saliency
from nnsee.methods.base import MethodError

captum_attr = pytest.importorskip("captum.attr")


@pytest.mark.parametrize("shape,dtype", [((1, 10, 10), torch.float64), ((3, 10, 10), torch.float64),
                                         ((3, 12, 12), torch.float32)])
def test_saliency_equals_captum_per_channel_and_max_over_channels(shape, dtype):
    model = random_cnn(shape, dtype=dtype)
    x, target = random_images(3, shape, dtype=dtype), [0, 3, 1]
    ref = captum_attr.Saliency(model).attribute(x, target=target, abs=True)
    ours = saliency(model, x, target, reduce="none")
    assert ours.dtype == x.numpy().dtype  # the model's
    assert_captum_close(ours, ref)
    top = saliency(model, x, target)  # reduce="max" is the default
    assert top.shape == (3, 1, *shape[1:])
    assert_captum_close(top, ref.amax(dim=1, keepdim=True))


def test_saliency_of_softmax_target_and_functional_inplace_relus():
    model = functional_cnn(c=3)
    x = random_images(2, (3, 8, 8))
    ref = captum_attr.Saliency(softmax_wrapped(model)).attribute(x, target=2)
    assert_captum_close(saliency(model, x, 2, output="softmax", reduce="none"), ref)
    ref = captum_attr.Saliency(model).attribute(x, target=1)
    assert_captum_close(saliency(model, x, 1, reduce="none"), ref)


def test_saliency_single_image_keeps_train_mode_and_checks_arguments():
    model = random_cnn().train()
    x = random_images(1, (1, 10, 10))[0]
    assert saliency(model, x, 0).shape == (1, 1, 10, 10)
    assert model.training
    with pytest.raises(MethodError, match="reduce must be one of max, none; got 'sum'"):
        saliency(model, x, 0, reduce="sum")
    with pytest.raises(MethodError, match="output must be one of logit, softmax"):
        saliency(model, x, 0, output="prob")
    with pytest.raises(MethodError, match="target class indices must lie in 0..3"):
        saliency(model, x, 4)
    with pytest.raises(MethodError, match="got 2 targets for 1 inputs"):
        saliency(model, x, [0, 1])
