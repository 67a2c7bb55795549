"""Guided backprop and the deconvnet: one ReLU-rule mechanism, equal to Captum's GuidedBackprop / Deconvolution."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from attribution.zf_models import Boom, FunctionalReLUNet, NoReLUNet, inplace_cnn, random_cnn
from torch import nn
from torch.overrides import _get_current_function_mode_stack

from nnsee.methods.attribution.deconvnet import deconvnet
from nnsee.methods.attribution.guided_backprop import guided_backprop
from nnsee.methods.attribution.relu_rules import relu_rule
from nnsee.methods.attribution.target import gradient
from nnsee.methods.base import MethodError

captum_attr = pytest.importorskip("captum.attr")
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:captum.*")

OURS = {"guided": guided_backprop, "deconvnet": deconvnet}
THEIRS = {"guided": captum_attr.GuidedBackprop, "deconvnet": captum_attr.Deconvolution}


def close(ours: np.ndarray, theirs: torch.Tensor) -> None:
    ref = theirs.detach().numpy()
    assert ours.shape == ref.shape
    assert np.abs(ref).max() > 0
    assert np.abs(ours - ref).max() <= 1e-5 * np.abs(ref).max()


def hooks_of(model: nn.Module) -> int:
    names = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks")
    return sum(len(getattr(m, n)) for m in model.modules() for n in names)


@pytest.mark.parametrize("rule", ["guided", "deconvnet"])
@pytest.mark.parametrize("channels", [1, 3])
def test_equals_captum_on_random_cnns(rule: str, channels: int) -> None:
    model = random_cnn(channels, size=13, hidden=5, seed=channels)  # 13 px: pooling drops a row and column
    x = torch.randn(5, channels, 13, 13)
    target = [0, 1, 2, 3, 1]
    close(OURS[rule](model, x, target), THEIRS[rule](model).attribute(x, target=torch.tensor(target)))
    assert hooks_of(model) == 0


@pytest.mark.parametrize("rule", ["guided", "deconvnet"])
def test_equals_captum_with_in_place_relus(rule: str) -> None:
    model = inplace_cnn()
    x = torch.randn(4, 3, 10, 10)
    ours = OURS[rule](model, x, 2)
    close(ours, THEIRS[rule](model).attribute(x, target=2))
    with torch.no_grad(), relu_rule(model, rule):  # the forward pass is not corrupted by the in-place ReLUs
        hooked = model(x)
    torch.testing.assert_close(hooked, model(x))
    assert hooks_of(model) == 0


def test_softmax_target_and_rules_differ_from_gradient() -> None:
    model = random_cnn(1, seed=3)
    x = torch.randn(3, 1, 12, 12)
    g, _ = gradient(model, x, 1, "softmax")
    gb = guided_backprop(model, x, 1, output="softmax")
    dc = deconvnet(model, x, 1, output="softmax")
    wrapped = nn.Sequential(model, nn.Softmax(dim=1))
    close(gb, captum_attr.GuidedBackprop(wrapped).attribute(x, target=1))
    assert not np.allclose(gb, g.numpy()) and not np.allclose(dc, gb)


def test_gradient_rule_is_the_plain_gradient_and_reused_relu_is_handled() -> None:
    torch.manual_seed(0)
    relu = nn.ReLU()
    model = nn.Sequential(nn.Linear(6, 5), relu, nn.Linear(5, 5), relu, nn.Linear(5, 2))
    x = torch.randn(3, 6, requires_grad=True)
    (plain,) = torch.autograd.grad(model(x)[:, 1].sum(), x)
    with relu_rule(model, "gradient"):
        (hooked,) = torch.autograd.grad(model(x)[:, 1].sum(), x)
    torch.testing.assert_close(hooked, plain)
    assert hooks_of(model) == 0


def test_hooks_released_after_an_error_in_forward() -> None:
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), Boom())
    with pytest.raises(RuntimeError, match="boom"):
        guided_backprop(model, torch.randn(2, 1, 5, 5), 0)
    assert hooks_of(model) == 0 and model.training  # training flag restored too (Sequential starts in train mode)


def test_functional_relu_is_refused_and_hooks_released() -> None:
    model = FunctionalReLUNet().eval()
    with pytest.raises(MethodError, match="functional ReLU"):
        deconvnet(model, torch.randn(2, 1, 8, 8), 0)
    assert hooks_of(model) == 0
    assert not _get_current_function_mode_stack()  # the watch ended with the failed forward pass
    assert torch.relu(torch.tensor([-1.0, 2.0])).tolist() == [0.0, 2.0]
    with pytest.raises(MethodError, match="no nn.ReLU modules"):
        guided_backprop(NoReLUNet(), torch.randn(1, 1, 8, 8), 0)
    with pytest.raises(MethodError, match="rule must be"), relu_rule(random_cnn(), "zeiler"):
        pass
