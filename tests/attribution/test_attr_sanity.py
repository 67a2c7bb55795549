"""Sanity check (Adebayo et al. 2018): maps of a trained CNN against maps of the same CNN with random weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tiny import make_splits

from nnsee.methods.attribution.deconvnet import deconvnet
from nnsee.methods.attribution.guided_backprop import guided_backprop
from nnsee.methods.attribution.target import as_input, gradient
from nnsee.methods.base import MethodError
from nnsee.methods.sanity import cascading_randomization, randomization_check, randomized, ranks, spearman, ssim
from nnsee.models.cnn import CNN
from nnsee.train.config import TrainConfig
from nnsee.train.fit import fit


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def saliency(model, x, target):  # noqa: ANN001, ANN201
    return gradient(model, as_input(x, model), target)[0].numpy()


def edge_detector(model, x, target):  # noqa: ANN001, ANN201 - a map of the input alone, blind to the model
    x = np.asarray(x)
    return np.abs(np.diff(x, axis=-1, prepend=0)) + np.abs(np.diff(x, axis=-2, prepend=0))


METHODS = {"saliency": saliency, "guided-backprop": guided_backprop, "deconvnet": deconvnet, "edges": edge_detector,
           "input": lambda model, x, target: np.asarray(x)}


def test_trained_cnn_maps_change_but_input_only_maps_do_not() -> None:
    data = make_splits(n_per_class=20, n_classes=3, shape=(1, 12, 12))
    torch.manual_seed(0)
    model = CNN((1, 12, 12), 3, channels=(4, 8), kernel=3)
    result = fit(model, data, TrainConfig(epochs=6, batch_size=8, lr=0.01, standardize="none"), None, progress=False)
    assert result.metrics["test"]["accuracy"] >= 0.9
    x, y = data.test.images[:8], data.test.labels[:8]
    before = [p.clone() for p in model.parameters()]
    state = torch.random.get_rng_state()
    scores = randomization_check(model, x, y, METHODS, seed=0)
    assert torch.equal(state, torch.random.get_rng_state())
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))  # model untouched
    assert scores["saliency"]["spearman"] < 0.5 and scores["saliency"]["ssim"] < 0.6
    assert scores["guided-backprop"]["spearman"] < 0.5 and scores["deconvnet"]["spearman"] < 0.5
    for blind in ("input", "edges"):
        assert scores[blind] == {"spearman": 1.0, "spearman_signed": 1.0, "ssim": 1.0}
    cascade = cascading_randomization(model, x, y, {"saliency": saliency}, seed=0)["saliency"]
    assert list(cascade) == ["out", "conv2", "conv1"]
    assert cascade["conv1"] == scores["saliency"]  # every layer randomized = full randomization


def test_ranks_spearman_and_ssim() -> None:
    np.testing.assert_array_equal(ranks(np.array([3.0, 1.0, 3.0, 2.0, 3.0])), [3.0, 0.0, 3.0, 1.0, 3.0])
    rng = np.random.default_rng(0)
    a = rng.integers(0, 5, size=200).astype(float)
    b = a + rng.normal(size=200)
    stats = pytest.importorskip("scipy.stats")
    assert spearman(a, b) == pytest.approx(stats.spearmanr(a, b).statistic, abs=1e-12)
    assert spearman(a, -a) == pytest.approx(-1.0) and np.isnan(spearman(a, np.ones(200)))
    m = rng.normal(size=(2, 9, 9))
    assert ssim(m, m) == pytest.approx(1.0) and ssim(m, 3 * m) == pytest.approx(1.0)  # scaled to [0, 1] first
    assert ssim(m, rng.normal(size=(2, 9, 9))) < 0.5
    with pytest.raises(MethodError, match="nothing to randomize"):
        randomized(torch.nn.Sequential(torch.nn.ReLU()))
