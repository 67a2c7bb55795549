"""Zeiler's projection of one activation back to pixels: a golden hand-weighted case, and Captum's Neuron variants."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from attribution.zf_models import random_cnn
from torch import nn

from nnsee.methods.attribution.deconvnet import project_activation
from nnsee.methods.base import MethodError

captum_attr = pytest.importorskip("captum.attr")
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:captum.*")

K = np.array([[1.0, 2.0, 0.0], [0.0, 3.0, -1.0], [-2.0, 0.0, 1.0]], dtype=np.float32)


def hand_model() -> nn.Sequential:
    """conv (filter 0 = K, filter 1 = all ones, no bias, padding 1) → ReLU → 2×2 max-pool → linear, on 8×8."""
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1, bias=False), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Linear(2 * 4 * 4, 2))
    with torch.no_grad():
        model[0].weight[0, 0] = torch.from_numpy(K)
        model[0].weight[1, 0] = 1.0
    return model.eval()


def test_golden_projection_is_the_filter_at_the_switch() -> None:
    # Image 0 is a single bright pixel at p = (5, 2). The conv is a correlation, out[i, j] = Σ K[a, b] x[i+a-1, j+b-1],
    # so map 0 is K flipped and centred on p: in the pool cell (2, 1) = rows 4-5 × cols 2-3 its values are
    # K[2,1], K[2,0], K[1,1], K[1,0] = 0, -2, 3, 0; after the ReLU the maximum 3 sits at p, which is the switch.
    # Deconvnet from a one-hot on pool activation (0, 2, 1): unpooling puts the 1 at p, the rule passes relu(1) = 1,
    # and conv backward (the transposed, flipped filter) gives ∂/∂x[m, n] = K[m-5+1, n-2+1]: the flips cancel, so
    # the projection is K itself pasted with its centre on p, and nothing of filter 1 (its activations were zeroed).
    # Image 1 (pixel at (1, 6)) asks for the maximum of the map: pool cell (0, 3), switch (1, 6), K centred there.
    x = np.zeros((2, 1, 8, 8), dtype=np.float32)
    x[0, 0, 5, 2] = 1.0
    x[1, 0, 1, 6] = 1.0
    expected = np.zeros_like(x)
    expected[0, 0, 4:7, 1:4] = K
    expected[1, 0, 0:3, 5:8] = K
    model = hand_model()
    both = project_activation(model, x, "2", 0, position=[(2, 1), (0, 3)])
    np.testing.assert_array_equal(both, expected)
    np.testing.assert_array_equal(project_activation(model, x, "2", 0), expected)  # position=None: the max
    np.testing.assert_array_equal(project_activation(model, x, "2", 0, rule="guided"), expected)
    captum = captum_attr.NeuronDeconvolution(model, model[2]).attribute(torch.from_numpy(x[:1]), (0, 2, 1))
    np.testing.assert_array_equal(captum.numpy(), expected[:1])


@pytest.mark.parametrize("layer,selector", [("conv2", (2, 3, 1)), ("relu2", (3, 0, 4)), ("pool2", (2, 2, 0)),
                                            ("pool1", (3, 1, 5)), ("fc_hidden", (4,))])
@pytest.mark.parametrize("rule,peer", [("deconvnet", "NeuronDeconvolution"), ("guided", "NeuronGuidedBackprop")])
@pytest.mark.parametrize("channels", [1, 3])
def test_equals_captum_neuron_variants(layer: str, selector: tuple, rule: str, peer: str, channels: int) -> None:
    model = random_cnn(channels, size=13, hidden=6, seed=7)
    x = torch.randn(4, channels, 13, 13) + 0.5
    position = selector[1:] or None
    ours = project_activation(model, x, layer, selector[0], position=position, rule=rule)
    theirs = getattr(captum_attr, peer)(model, dict(model.named_modules())[layer]).attribute(x, selector).numpy()
    assert np.abs(theirs).max() > 0
    assert np.abs(ours - theirs).max() <= 1e-5 * np.abs(theirs).max()


def test_per_image_channels_and_errors() -> None:
    model = random_cnn(1, seed=2)
    x = torch.randn(3, 1, 12, 12)
    both = project_activation(model, x, "conv2", [0, 5, 2], position=(1, 1))
    for i, c in enumerate([0, 5, 2]):
        np.testing.assert_allclose(both[i : i + 1], project_activation(model, x[i : i + 1], "conv2", c, (1, 1)),
                                   atol=1e-6)
    with pytest.raises(MethodError, match="channels"):
        project_activation(model, x, "conv2", 6)
    with pytest.raises(MethodError, match="positions must lie"):
        project_activation(model, x, "conv2", 0, position=(6, 0))
    with pytest.raises(MethodError, match="no layer"):
        project_activation(model, x, "conv9", 0)
