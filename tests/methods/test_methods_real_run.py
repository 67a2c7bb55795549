"""The views on real small runs: softmax regression and a small MLP on 600 built-in digits, 2 epochs each."""

import numpy as np
import pytest
import torch

from nnsee.data import Splits, load_digits, split
from nnsee.methods import (
    MethodError,
    class_templates,
    effective_templates,
    explain,
    templates_over_training,
    unit_cards,
)
from nnsee.models import MLP, SoftmaxRegression
from nnsee.train import TrainConfig, fit, load_run

EPS32 = float(np.finfo(np.float32).eps)  # 2u: twice float32's unit roundoff


def dot_bound(terms: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """Worst-case error of a float32 ``Σ_i terms[k, i] + bias[k]`` (any order): γ_n·Σ|·| with γ_n ≈ n·u < n·EPS32.

    Relative by construction (scaled by the sum of |terms|), so logits near 40 get a tolerance of their own size.
    """
    return (terms.shape[-1] + 1) * EPS32 * (np.abs(terms).sum(-1) + np.abs(bias))


def _f64(t: torch.Tensor) -> np.ndarray:
    return t.detach().double().numpy()


@pytest.fixture(scope="module")
def digits() -> Splits:
    data = load_digits()
    small = data.subset(np.arange(600))
    return Splits(*split(small, seed=0), spec={"spec": "digits:first600"})


def train(model: torch.nn.Module, data: Splits, out) -> None:
    fit(model, data, TrainConfig(epochs=2, batch_size=64, snapshots=[0, 2]), out, progress=False)


@pytest.fixture(scope="module")
def softmax_run(digits, tmp_path_factory):
    out = tmp_path_factory.mktemp("softmax")
    torch.manual_seed(0)
    train(SoftmaxRegression((1, 28, 28), 10), digits, out)
    return load_run(out)


@pytest.fixture(scope="module")
def mlp_run(digits, tmp_path_factory):
    out = tmp_path_factory.mktemp("mlp")
    torch.manual_seed(0)
    train(MLP((1, 28, 28), 10, hidden=(20,)), digits, out)
    return load_run(out)


def test_softmax_run_templates_and_contributions(softmax_run, digits):
    run = softmax_run
    t = class_templates(run.model, run.input_shape)
    assert t.shape == (10, 1, 28, 28) and np.isfinite(t).all()
    np.testing.assert_array_equal(effective_templates(run.model), t)
    x = run.standardizer.transform(digits.test.images[:5])
    assert x.dtype == np.float32  # what the model sees, exactly, so float64 references start from the same x
    w, b = _f64(run.model.out.weight), _f64(run.model.out.bias)
    for image in x:
        e = explain(run.model, image)
        assert e.contributions.shape == (10, 1, 28, 28)
        # An independent float64 reference from the weights: terms x_i W_k,i and logits Σ_i x_i W_k,i + b_k.
        terms = w * image.reshape(-1).astype(np.float64)
        logits64 = terms.sum(1) + b
        np.testing.assert_allclose(e.contributions.reshape(10, -1), terms, rtol=EPS32, atol=0)  # one rounding each
        # float32 products summed in float64, then rounded to float32: at most 2u·Σ|terms| off.
        assert np.all(np.abs(e.contribution_sum - terms.sum(1)) <= EPS32 * np.abs(terms).sum(1))
        np.testing.assert_array_equal(e.bias, b)
        assert np.all(np.abs(e.logits - logits64) <= dot_bound(terms, b))
        total = e.contribution_sum.astype(np.float64) + e.bias
        assert np.all(np.abs(total - e.logits) <= dot_bound(terms, b) + EPS32 * np.abs(terms).sum(1))
        assert e.probabilities.sum() == pytest.approx(1, abs=1e-6)


def snapshot_weights(run) -> dict[int, dict[str, torch.Tensor]]:  # noqa: ANN001
    """``{epoch: state_dict}`` of every snapshot of a loaded run, as the report passes them to the views."""
    return {epoch: run.snapshot_state(epoch) for epoch in run.snapshot_epochs}


def test_softmax_run_evolution(softmax_run):
    snaps = snapshot_weights(softmax_run)
    assert list(snaps) == [0, 2]
    strip = templates_over_training(softmax_run.model, snaps, softmax_run.input_shape)
    assert list(strip) == [0, 2] and all(v.shape == (10, 1, 28, 28) for v in strip.values())
    np.testing.assert_array_equal(strip[2], class_templates(softmax_run.model))  # epoch 2 is the final model
    assert not np.array_equal(strip[0], strip[2])


def test_mlp_run_cards_and_evolution(mlp_run, digits):
    run = mlp_run
    std = run.standardizer
    cards = unit_cards(run.model, std.transform(digits.train.images), std.transform(digits.val.images),
                       digits.val.labels, run.class_names, sort_by="ablation")
    assert len(cards) == 20 and cards[0].incoming.shape == (1, 28, 28) and cards[0].outgoing.shape == (10,)
    assert all(0 <= i < len(digits.train) for c in cards for i in c.top_images)
    strip = templates_over_training(run.model, snapshot_weights(run), run.input_shape, n_units=8)
    assert list(strip) == [0, 2] and strip[2].shape == (8, 1, 28, 28)
    image = std.transform(digits.test.images[0]).reshape(-1).astype(np.float64)
    e = explain(run.model, std.transform(digits.test.images[0]))
    # An independent float64 forward from the weights, and how far float32 may stray from it (tanh is
    # 1-Lipschitz, and torch's float32 tanh is within a few ulp).
    w1, b1, w_out, b_out = (_f64(p) for p in (run.model.fc1.weight, run.model.fc1.bias, run.model.out.weight,
                                                run.model.out.bias))
    pre_terms = w1 * image
    hidden64 = np.tanh(pre_terms.sum(1) + b1)
    hidden_bound = dot_bound(pre_terms, b1) + 2 * EPS32 * np.abs(hidden64)
    assert np.all(np.abs(e.hidden - hidden64) <= hidden_bound)
    vote_terms = w_out * hidden64
    logits64 = vote_terms.sum(1) + b_out
    logit_bound = dot_bound(vote_terms, b_out) + np.abs(w_out) @ hidden_bound
    assert np.all(np.abs(e.logits - logits64) <= logit_bound)
    votes = w_out * e.hidden.astype(np.float64)  # the votes of the hidden values the model computed
    np.testing.assert_allclose(e.votes, votes, rtol=EPS32, atol=0)
    assert np.all(np.abs(e.contribution_sum - votes.sum(1)) <= EPS32 * np.abs(votes).sum(1))
    np.testing.assert_array_equal(e.out_bias, b_out)
    total = e.contribution_sum.astype(np.float64) + e.out_bias
    assert np.all(np.abs(total - e.logits) <= EPS32 * np.abs(votes).sum(1) + dot_bound(votes, b_out))
    with pytest.raises(MethodError, match="effective_templates"):
        class_templates(run.model)


def test_run_without_snapshots_has_no_evolution(digits, tmp_path):
    torch.manual_seed(0)
    fit(SoftmaxRegression((1, 28, 28), 10), digits, TrainConfig(epochs=1), tmp_path, progress=False)
    run = load_run(tmp_path)
    assert snapshot_weights(run) == {} and templates_over_training(run.model, snapshot_weights(run)) == {}
