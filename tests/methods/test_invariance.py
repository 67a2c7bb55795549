"""Zeiler & Fergus invariance curves against answers worked out here with numpy (float64): exact shifts with a
zero border, np.rot90, a global-average-pool model (translation-invariant for in-bounds shifts), a linear model."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from nnsee.errors import MethodError
from nnsee.methods.invariance import FAMILIES, default_amounts, invariance_curves, transformed

SIDE = 20
MEAN, STD = 0.3, 0.2  # a standardization whose 0 is not the background: a fill in the wrong space shows


def standardize(x: np.ndarray) -> np.ndarray:
    return ((x - MEAN) / STD).astype(np.float32)


def blob(seed: int = 0) -> np.ndarray:
    """A (1, SIDE, SIDE) image: random pixels in the central 8x8, black border 6 px wide (all shifts in bounds)."""
    x = np.zeros((1, SIDE, SIDE), np.float32)
    x[0, 6:14, 6:14] = np.random.default_rng(seed).uniform(0.2, 1.0, (8, 8))
    return x


def shifted(x: np.ndarray, t: int) -> np.ndarray:
    """``x`` moved down by ``t`` rows, zeros coming in."""
    out = np.zeros_like(x, dtype=np.float64)
    if t >= 0:
        out[:, t:] = x[:, : SIDE - t]
    else:
        out[:, :t] = x[:, -t:]
    return out


class Pooled(nn.Module):
    """features = the global average of each channel (``pool``), then a linear classifier."""

    def __init__(self) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.out = nn.Linear(1, 2)
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.out(self.pool(x).flatten(1))


def linear_model(seed: int = 1) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(SIDE * SIDE, 3))


def test_default_amounts_scale_with_the_image_and_hold_the_identity() -> None:
    assert default_amounts("translate", 28).tolist() == [-8, -6, -4, -2, 0, 2, 4, 6, 8]
    assert default_amounts("translate", 56).tolist() == [-16, -12, -8, -4, 0, 4, 8, 12, 16]
    assert 1.0 in default_amounts("scale", 28) and 0.0 in default_amounts("rotate", 28)


def test_identity_amounts_give_the_original_exactly() -> None:
    model = linear_model()
    x = blob()
    (t, s, r) = invariance_curves(model, x, 2, layers=["0", "1"], standardize=standardize,
                           amounts={"translate": [0], "scale": [1.0], "rotate": [0.0]})
    with torch.no_grad():
        p0 = torch.softmax(model(torch.from_numpy(standardize(x[None]))).double(), 1)[0, 2].item()
    for curve in (t, s, r):
        assert np.array_equal(curve.images[0], x)
        assert curve.probability[0] == curve.original == pytest.approx(p0, abs=1e-6)
        assert all(d[0] == 0.0 for d in curve.distances.values())


def test_translation_and_rotation_resample_exactly() -> None:
    x = blob()
    out = transformed(x, "translate", [-3, 0, 4])
    for img, t in zip(out, (-3, 0, 4), strict=True):
        np.testing.assert_allclose(img, shifted(x, t), atol=1e-6)
    rot = transformed(x, "rotate", [90.0, -90.0])
    np.testing.assert_allclose(rot[0], np.rot90(x, 1, axes=(1, 2)), atol=1e-5)  # counter-clockwise on screen
    np.testing.assert_allclose(rot[1], np.rot90(x, -1, axes=(1, 2)), atol=1e-5)


def test_the_fill_is_the_background_in_raw_pixels() -> None:
    x = np.full((1, SIDE, SIDE), 0.8, np.float32)  # a white image: what comes in from outside is white too
    for family in FAMILIES:
        np.testing.assert_allclose(transformed(x, family, default_amounts(family, SIDE)), 0.8, atol=1e-6)


def test_global_average_pool_is_translation_invariant_in_standardized_space() -> None:
    """Z&F's question on a model known to be invariant: shifting a black-bordered image within bounds leaves the
    average of every pixel, so the pooled features (distance 0) and the probability (the original's) unchanged."""
    model = Pooled()
    x = blob()
    (curve,) = invariance_curves(model, x, 1, layers=["pool"], standardize=standardize, families=["translate"])
    assert model.calls == 1  # the original and every shift in one forward pass
    assert curve.amounts.tolist() == [-6, -4, -3, -2, 0, 2, 3, 4, 6]  # whole pixels of linspace(-6, 6, 9)
    np.testing.assert_allclose(curve.distances["pool"], 0.0, atol=1e-6)
    np.testing.assert_allclose(curve.probability, curve.original, atol=1e-6)


def test_linear_model_probability_and_normalized_distance_under_shifts() -> None:
    """p(class | shifted x) = softmax(W std(shift(x)) + b), and the input layer's distance
    ‖std(shift(x)) − std(x)‖ / ‖std(x)‖, both in float64 numpy."""
    model = linear_model()
    w = model[1].weight.detach().double().numpy()
    b = model[1].bias.detach().double().numpy()
    x = blob(3)
    amounts = [-6, -2, 0, 1, 5]
    (curve,) = invariance_curves(model, x, 0, layers=["0"], standardize=standardize, families=["translate"],
                          amounts={"translate": amounts})
    std0 = ((x.astype(np.float64) - MEAN) / STD).ravel()
    for i, t in enumerate(amounts):
        z = ((shifted(x, t) - MEAN) / STD).ravel()
        logits = w @ z + b
        p = np.exp(logits - logits.max())
        assert curve.probability[i] == pytest.approx(p[0] / p.sum(), abs=1e-5)
        assert curve.distances["0"][i] == pytest.approx(np.linalg.norm(z - std0) / np.linalg.norm(std0), abs=1e-5)


def test_bad_inputs_are_one_line_errors() -> None:
    with pytest.raises(MethodError, match="transform family"):
        invariance_curves(linear_model(), blob(), 0, families=["shear"])
    with pytest.raises(MethodError, match="not one of the model's 3 outputs"):
        invariance_curves(linear_model(), blob(), 5)
    with pytest.raises(MethodError, match="one image"):
        transformed(blob()[None], "scale", [1.0])
