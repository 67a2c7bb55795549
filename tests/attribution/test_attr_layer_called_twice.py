"""A layer called more than once in a forward pass: every method reads its last call, as Captum does."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from nnsee.methods.activation_max import activation_maximization
from nnsee.methods.attribution.deconvnet import project_activation
from nnsee.methods.base import layer_reader

captum_attr = pytest.importorskip("captum.attr")
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:captum.*")


class SharedConv(nn.Module):
    """conv → ReLU → the same conv again → ReLU → max-pool → linear (its own ReLU modules for each call)."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.conv = nn.Conv2d(2, 2, 3, padding=1)
        self.relu1, self.relu2 = nn.ReLU(), nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.out = nn.Linear(2 * 4 * 4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.relu2(self.second(self.relu1(self.conv(x))))
        return self.out(self.pool(h).flatten(1))

    def second(self, h: torch.Tensor) -> torch.Tensor:
        return self.conv(h)


class TwoConvs(SharedConv):
    """The same numbers, with the second call a separate copy ``conv_b`` of the conv."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__(seed)
        self.conv_b = copy.deepcopy(self.conv)

    def second(self, h: torch.Tensor) -> torch.Tensor:
        return self.conv_b(h)


def images() -> torch.Tensor:
    return torch.as_tensor(np.random.default_rng(3).normal(size=(3, 2, 8, 8)) + 0.3, dtype=torch.float32)


@pytest.mark.parametrize("rule,peer", [("deconvnet", "NeuronDeconvolution"), ("guided", "NeuronGuidedBackprop")])
def test_projection_of_a_layer_called_twice_is_captums(rule, peer):
    model, x = SharedConv().eval(), images()
    selector = (1, 5, 2)
    ours = project_activation(model, x, "conv", selector[0], position=selector[1:], rule=rule)
    theirs = getattr(captum_attr, peer)(model, model.conv).attribute(x, selector).numpy()
    twin = project_activation(TwoConvs().eval(), x, "conv_b", selector[0], position=selector[1:], rule=rule)
    assert np.abs(theirs).max() > 0
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-6 * np.abs(theirs).max())
    np.testing.assert_allclose(ours, twin, rtol=0, atol=1e-6 * np.abs(theirs).max())
    # position=None: the maximum of the last call's map
    last = captum_attr.LayerActivation(model, model.conv).attribute(x)[:, 0].flatten(1).argmax(1)
    ours = project_activation(model, x, "conv", 0, rule=rule)
    for i, flat in enumerate(last.tolist()):
        theirs = getattr(captum_attr, peer)(model, model.conv).attribute(x[i:i + 1], (0, flat // 8, flat % 8))
        np.testing.assert_allclose(ours[i:i + 1], theirs.numpy(), rtol=0, atol=1e-6 * np.abs(theirs).max().item())


def test_layer_reader_gives_the_last_call_and_stops_there_from_the_second_read():
    model, x = SharedConv().eval(), images()
    expected = captum_attr.LayerActivation(model, model.conv).attribute(x)
    after = []
    model.relu2.register_forward_hook(lambda m, i, o: after.append(len(o)))
    with torch.no_grad(), layer_reader(model, "conv") as read:
        first = read(x)  # counts the calls: the whole forward pass
        assert after == [3]
        second = read(x[:2])  # stops right after the second call: relu2 is not reached
        assert after == [3]
    np.testing.assert_array_equal(first.numpy(), expected.numpy())
    np.testing.assert_array_equal(second.numpy(), expected[:2].numpy())


def test_activation_maximization_of_a_layer_called_twice_targets_the_last_call():
    ours = activation_maximization(SharedConv().eval(), ("conv", 1), (2, 8, 8), steps=5, seed=1)
    twin = activation_maximization(TwoConvs().eval(), ("conv_b", 1), (2, 8, 8), steps=5, seed=1)
    first = activation_maximization(TwoConvs().eval(), ("conv", 1), (2, 8, 8), steps=5, seed=1)
    assert np.abs(twin - first).max() > 1e-3  # the two calls want different images
    np.testing.assert_allclose(ours, twin, rtol=0, atol=1e-6)
