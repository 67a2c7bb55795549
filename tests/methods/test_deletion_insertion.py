"""Deletion and insertion curves against a hand-weighted softmax regression whose best order is known analytically.

Only class 0 has weights (W_1 = W_2 = 0), so p_0 = e^{l_0} / (e^{l_0} + e^{b_1} + e^{b_2}) rises with
l_0 = b_0 + Σ_i c_i, where c_i = Σ_channels x_{c,i} W_{0,c,i} is position i's contribution. With the baseline 0 a
deleted position adds nothing: removing the n largest c_i gives the lowest l_0 any n removals can give (deletion's
optimum at every step) and revealing them the highest (insertion's). The curves are worked out here with numpy in
float64, independently of the code under test.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nnsee.methods.attribution.registry import attribute
from nnsee.methods.base import MethodError
from nnsee.methods.deletion_insertion import auc, counts, curves, deletion_insertion, order_from_maps, random_curves
from nnsee.models import SoftmaxRegression

SHAPE = (2, 3, 3)
B = np.array([0.3, -0.2, 0.1])


def hand_model() -> tuple[SoftmaxRegression, np.ndarray]:
    rng = np.random.default_rng(7)
    w = np.zeros((3, int(np.prod(SHAPE))))
    w[0] = rng.normal(size=w.shape[1])
    model = SoftmaxRegression(SHAPE, 3).double()
    with torch.no_grad():
        model.out.weight.copy_(torch.as_tensor(w))
        model.out.bias.copy_(torch.as_tensor(B))
    return model, w[0].reshape(SHAPE)


def image() -> np.ndarray:
    return np.random.default_rng(3).normal(size=(1, *SHAPE))


def analytic(x: np.ndarray, w0: np.ndarray, order: np.ndarray, ns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    contribution = (x[0] * w0).sum(0).ravel()[order]

    def p0(logit: np.ndarray) -> np.ndarray:
        return np.exp(logit) / (np.exp(logit) + np.exp(B[1]) + np.exp(B[2]))

    kept = np.array([contribution[n:].sum() for n in ns])
    shown = np.array([contribution[:n].sum() for n in ns])
    return p0(B[0] + kept), p0(B[0] + shown)


def test_curves_and_areas_equal_the_analytic_ones() -> None:
    model, w0 = hand_model()
    x = image()
    best = np.argsort(-(x[0] * w0).sum(0).ravel())
    c = curves(model, x, best[None], 0, steps=9)
    ns = np.arange(10)  # 9 positions, 9 steps: one position per step
    deletion, insertion = analytic(x, w0, best, ns)
    np.testing.assert_allclose(c.fractions, ns / 9)
    np.testing.assert_allclose(c.deletion[0], deletion, rtol=1e-12)
    np.testing.assert_allclose(c.insertion[0], insertion, rtol=1e-12)
    # trapezoid over the fraction 0..1 (not over the step numbers 0..9)
    np.testing.assert_allclose(c.deletion_auc[0], ((deletion[1:] + deletion[:-1]) / 2).sum() / 9, rtol=1e-12)
    np.testing.assert_allclose(c.insertion_auc[0], ((insertion[1:] + insertion[:-1]) / 2).sum() / 9, rtol=1e-12)


def test_gradient_x_input_reaches_the_optimum_and_worse_orders_score_worse() -> None:
    model, w0 = hand_model()
    x = image()
    maps = attribute("gradient-x-input", model, x, 0).maps
    c = deletion_insertion(model, x, maps, 0, steps=9)
    best = np.argsort(-(x[0] * w0).sum(0).ravel())
    np.testing.assert_array_equal(order_from_maps(maps, x.shape)[0], best)
    deletion, insertion = analytic(x, w0, best, np.arange(10))
    np.testing.assert_allclose(c.deletion[0], deletion, rtol=1e-12)
    worst = curves(model, x, best[::-1][None], 0, steps=9)
    assert worst.deletion_auc[0] > c.deletion_auc[0] + 0.05
    assert worst.insertion_auc[0] < c.insertion_auc[0] - 0.05
    rng = np.random.default_rng(0)
    for _ in range(20):  # no order beats the contribution order at any step
        other = curves(model, x, rng.permutation(9)[None], 0, steps=9)
        assert np.all(other.deletion[0] >= c.deletion[0] - 1e-12)
        assert np.all(other.insertion[0] <= c.insertion[0] + 1e-12)
    rand = random_curves(model, x, 0, steps=9, repeats=8)
    assert rand.deletion_auc[0] > c.deletion_auc[0] and rand.insertion_auc[0] < c.insertion_auc[0]


def test_the_baseline_is_what_removed_pixels_become() -> None:
    model, w0 = hand_model()
    x = image()
    best = np.argsort(-(x[0] * w0).sum(0).ravel())
    c = curves(model, x, best[None], 0, steps=9, baseline=0.5)
    contribution = (x[0] * w0).sum(0).ravel()[best]
    fill = (0.5 * w0).sum(0).ravel()[best]
    ns = np.arange(10)
    logit = B[0] + np.array([fill[:n].sum() + contribution[n:].sum() for n in ns])
    expected = np.exp(logit) / (np.exp(logit) + np.exp(B[1]) + np.exp(B[2]))
    np.testing.assert_allclose(c.deletion[0], expected, rtol=1e-12)
    np.testing.assert_allclose(c.insertion[0][0], expected[-1], rtol=1e-12)  # nothing revealed: all baseline


def test_random_baseline_is_seeded_and_reproducible() -> None:
    model, _ = hand_model()
    x = np.random.default_rng(4).normal(size=(3, *SHAPE))
    a = random_curves(model, x, [0, 1, 2], steps=5, repeats=4, seed=11)
    b = random_curves(model, x, [0, 1, 2], steps=5, repeats=4, seed=11)
    other = random_curves(model, x, [0, 1, 2], steps=5, repeats=4, seed=12)
    # the same orders; forwards in other spans (the chunk tuner's) may round the last bit differently
    np.testing.assert_allclose(a.deletion, b.deletion, rtol=1e-12)
    np.testing.assert_allclose(a.insertion_auc, b.insertion_auc, rtol=1e-12)
    assert not np.array_equal(a.deletion, other.deletion)
    # the mean of R single-order curves, each order the seeded generator's next permutation
    rng = np.random.default_rng(11)
    orders = np.stack([rng.permutation(9) for _ in range(12)])
    one = curves(model, np.repeat(x, 4, 0), orders, np.repeat([0, 1, 2], 4), steps=5)
    np.testing.assert_allclose(a.deletion, one.deletion.reshape(3, 4, -1).mean(1), rtol=1e-12)


def test_auc_of_a_constant_curve_is_the_constant_and_counts_cover_zero_to_all() -> None:
    f = counts(784, 20) / 784
    assert f[0] == 0 and f[-1] == 1 and len(f) == 21
    assert auc(f, np.full(21, 0.37)) == pytest.approx(0.37, abs=1e-12)
    uneven = np.array([0.0, 0.1, 1.0])
    assert auc(uneven, np.array([1.0, 1.0, 0.0])) == pytest.approx(0.1 + 0.45)


def test_batches_bounded_and_results_independent_of_chunking(monkeypatch: pytest.MonkeyPatch) -> None:
    import nnsee.methods.deletion_insertion as di

    model, _ = hand_model()
    x = np.random.default_rng(5).normal(size=(4, *SHAPE))
    maps = np.random.default_rng(6).normal(size=(4, 1, 3, 3))
    whole = deletion_insertion(model, x, maps, 1, steps=9)
    monkeypatch.setattr(di, "MAX_BATCH_VALUES", 1)
    seen = []

    class Counting(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = model

        def forward(self, t: torch.Tensor) -> torch.Tensor:
            seen.append(t.shape[0])
            return self.inner(t)

    chunked = deletion_insertion(Counting(), x, maps, 1, steps=9)
    assert max(seen) <= 10  # at most one image's curve per forward
    np.testing.assert_allclose(chunked.deletion, whole.deletion, rtol=1e-12)


def test_bad_inputs_are_one_line_errors() -> None:
    model, _ = hand_model()
    with pytest.raises(MethodError, match="expected maps"):
        deletion_insertion(model, image(), np.zeros((1, 1, 4, 4)), 0)
    with pytest.raises(MethodError, match="steps must be"):
        counts(9, 0)
    with pytest.raises(MethodError, match="target class"):
        random_curves(model, image(), 5)
