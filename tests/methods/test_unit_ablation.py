"""The fine unit ablation: mean change of each class's probability and logit when one hidden unit is switched off."""

import math
import sys

import numpy as np
import pytest
import torch
from methods.hand_models import FOUR_IMAGES, mlp_2x2

from nnsee.methods import MethodError, UnitAblation, unit_ablation
from nnsee.models import MLP

# Hand-worked on FOUR_IMAGES (see hand_models.py and test_methods_hidden_units.py):
#   h: A [2,0,0], B [0,2,0], C [1,1,1.5], D [2,1,0]  → mean h = [5/4, 1, 3/8]
#   W_out = [[2,−1,0],[−1,2,0.5]], so Δz[j] = −mean(h_j)·W_out[:, j]:
LOGIT = [[-2.5, 1.25], [1.0, -2.0], [0.0, -0.1875]]
#   two classes: p_0 = σ(d), d = z_0 − z_1 = [6.1, −5.9, −0.65, 3.1] for A..D; switching unit j off changes d by
#   −h_j·(W_out[0, j] − W_out[1, j]) = −h_j·[3, −3, −0.5][j].
D_BASE = [6.1, -5.9, -0.65, 3.1]
H = [[2, 0, 0], [0, 2, 0], [1, 1, 1.5], [2, 1, 0]]
GAP = [3.0, -3.0, -0.5]


def sigma(t: float) -> float:
    return 1 / (1 + math.exp(-t))


def analytic_probability() -> np.ndarray:
    rows = []
    for j in range(3):
        dp0 = sum(sigma(d - h[j] * GAP[j]) - sigma(d) for d, h in zip(D_BASE, H, strict=True)) / 4
        rows.append([dp0, -dp0])
    return np.array(rows)


def test_hand_weighted_mlp_equals_the_analytic_change():
    result = unit_ablation(mlp_2x2(torch.float64), FOUR_IMAGES.astype(np.float64))
    assert isinstance(result, UnitAblation) and result.n_images == 4 and result.layer == "fc1"
    assert result.probability.dtype == np.float64 and result.probability.shape == (3, 2)
    np.testing.assert_allclose(result.logit, LOGIT, atol=1e-12)
    np.testing.assert_allclose(result.probability, analytic_probability(), atol=1e-12)
    # unit 1 carries class 1: switching it off lowers p(1) most
    assert result.largest_drop(1)[0] == 1 and result.largest_drop(1)[1] == pytest.approx(analytic_probability()[1, 1])
    # float32 model: the same within float32 rounding of h
    np.testing.assert_allclose(unit_ablation(mlp_2x2(), FOUR_IMAGES).probability, analytic_probability(), atol=1e-6)


def brute_force(model: MLP, images: np.ndarray, layer_index: int) -> tuple[np.ndarray, np.ndarray]:
    """Float64 numpy forward of an MLP (tanh) with each unit of hidden layer ``layer_index`` zeroed in turn."""
    linears = [m for m in model if isinstance(m, torch.nn.Linear)]
    ws = [(m.weight.detach().double().numpy(), m.bias.detach().double().numpy()) for m in linears]
    x = images.reshape(len(images), -1).astype(np.float64)

    def forward(zero: int | None) -> np.ndarray:
        h = x
        for i, (w, b) in enumerate(ws[:-1]):
            h = np.tanh(h @ w.T + b)
            if i == layer_index and zero is not None:
                h = h.copy()
                h[:, zero] = 0.0
        w, b = ws[-1]
        return h @ w.T + b

    def soft(z: np.ndarray) -> np.ndarray:
        e = np.exp(z - z.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)

    base = forward(None)
    units = ws[layer_index][0].shape[0]
    dz = np.array([(forward(j) - base).mean(0) for j in range(units)])
    dp = np.array([(soft(forward(j)) - soft(base)).mean(0) for j in range(units)])
    return dp, dz


def test_hooked_path_of_a_deeper_mlp_equals_a_brute_force_forward():
    torch.manual_seed(5)
    model = MLP((1, 3, 3), 4, hidden=(6, 5), activation="tanh")
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(3)  # larger weights: probabilities move visibly
    images = np.random.default_rng(6).normal(size=(37, 1, 3, 3)).astype(np.float32)
    for layer, index in (("fc1", 0), ("fc2", 1)):  # fc1: hooked; fc2 feeds the output: exact
        dp, dz = brute_force(model, images, index)
        assert np.abs(dp).max() > 0.01
        for batch_size in (1, 8, 256):
            got = unit_ablation(model, images, layer=layer, batch_size=batch_size)
            np.testing.assert_allclose(got.probability, dp, atol=2e-6)
            np.testing.assert_allclose(got.logit, dz, atol=2e-5)
            np.testing.assert_allclose(got.probability.sum(1), 0, atol=1e-9)


def test_exact_path_chunks_and_transform(monkeypatch):
    torch.manual_seed(1)
    model = MLP((1, 2, 2), 3, hidden=(7,), activation="tanh").double()
    images = np.random.default_rng(2).normal(size=(20, 1, 2, 2))
    dp, dz = brute_force(model, images, 0)
    # 1 unit per chunk on a batch of 10 × 3 classes
    monkeypatch.setattr(sys.modules["nnsee.methods.unit_ablation"], "_CHUNK_ELEMENTS", 30)
    got = unit_ablation(model, images / 2, batch_size=10, transform=lambda b: b * 2)
    np.testing.assert_allclose(got.probability, dp, atol=1e-12)
    np.testing.assert_allclose(got.logit, dz, atol=1e-12)


def test_no_images_and_bad_inputs():
    empty = unit_ablation(mlp_2x2(), FOUR_IMAGES[:0])
    assert empty.n_images == 0 and np.isnan(empty.probability).all() and empty.probability.shape == (3, 2)
    assert np.isnan(empty.largest_drop(0)[1])
    with pytest.raises(MethodError, match="output layer"):
        unit_ablation(mlp_2x2(), FOUR_IMAGES, layer="out")
    with pytest.raises(MethodError, match="no hidden layer 'fc9'"):
        unit_ablation(mlp_2x2(), FOUR_IMAGES, layer="fc9")
    with pytest.raises(MethodError, match="batch_size"):
        unit_ablation(mlp_2x2(), FOUR_IMAGES, batch_size=0)
    with pytest.raises(MethodError, match="nn.Sequential"):
        unit_ablation(torch.nn.Module(), FOUR_IMAGES)
