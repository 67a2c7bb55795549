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
    snapshot_weights,
    templates_over_training,
    unit_cards,
)
from nnsee.models import MLP, SoftmaxRegression
from nnsee.train import TrainConfig, fit, load_run


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
    for image in x:
        e = explain(run.model, image)
        assert e.contributions.shape == (10, 1, 28, 28)
        np.testing.assert_allclose(e.contribution_sum + e.bias, e.logits, rtol=0, atol=1e-4)
        assert e.probabilities.sum() == pytest.approx(1, abs=1e-6)


def test_softmax_run_evolution(softmax_run):
    snaps = snapshot_weights(softmax_run.path)
    assert list(snaps) == [0, 2]
    strip = templates_over_training(softmax_run.path)
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
    strip = templates_over_training(run.path, n_units=8)
    assert list(strip) == [0, 2] and strip[2].shape == (8, 1, 28, 28)
    e = explain(run.model, std.transform(digits.test.images[0]))
    np.testing.assert_allclose(e.contribution_sum + e.out_bias, e.logits, rtol=0, atol=1e-4)
    with pytest.raises(MethodError, match="effective_templates"):
        class_templates(run.model)


def test_run_without_snapshots_has_no_evolution(digits, tmp_path):
    torch.manual_seed(0)
    fit(SoftmaxRegression((1, 28, 28), 10), digits, TrainConfig(epochs=1), tmp_path, progress=False)
    assert templates_over_training(tmp_path) == {} and snapshot_weights(tmp_path) == {}
