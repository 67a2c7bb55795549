"""The confusion matrix's cells (which test images, in which order, how many) against a plain Python loop, and the
drill-down's maps against the hand-weighted models' analytic answers and a plain autograd gradient."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from methods.hand_models import FOUR_IMAGES, MLP_B1, MLP_W1, MLP_W2, SOFTMAX_W, mlp_2x2, softmax_2x2

from nnsee.errors import MethodError
from nnsee.methods.confusion_cells import confusion_cells, predicted_maps, top_confusions
from nnsee.report.sections.confusion_section import per_cell_cap


def _brute(labels: np.ndarray, predicted: np.ndarray, k: int) -> dict[tuple[int, int], list[int]]:
    members: dict[tuple[int, int], list[int]] = {}
    for n in range(len(labels)):
        members.setdefault((int(labels[n]), int(predicted[n])), []).append(n)
    return members


@pytest.mark.parametrize("cap", [1, 3, 1000])
def test_each_cell_holds_its_test_images_in_data_set_order_up_to_the_cap(cap: int) -> None:
    rng = np.random.default_rng(1)
    k = 5
    logits = rng.normal(size=(400, k))
    labels = rng.integers(0, k, size=400)
    cells = confusion_cells(logits, labels, k, cap=cap)
    members = _brute(labels, logits.argmax(1), k)
    assert sorted(cells.index) == sorted(members)  # every non-empty cell, no empty one
    for (i, j), want in members.items():
        assert cells.index[(i, j)].tolist() == want[:cap]
        assert cells.count(i, j) == len(want)
    for i in range(k):
        for j in range(k):
            assert cells.matrix[i, j] == len(members.get((i, j), []))


def test_only_the_cells_asked_for_and_predicted_classes_as_input() -> None:
    labels = np.array([0, 1, 1, 2, 2, 2, 0])
    predicted = np.array([1, 1, 0, 2, 0, 0, 1])
    cells = confusion_cells(predicted, labels, 3, cap=1, cells=[(2, 0), (0, 2)])
    assert list(cells.index) == [(2, 0), (0, 2)]
    assert cells.index[(2, 0)].tolist() == [4] and cells.count(2, 0) == 2
    assert cells.index[(0, 2)].tolist() == [] and cells.count(0, 2) == 0


def test_bad_inputs_are_refused_in_one_line() -> None:
    with pytest.raises(MethodError, match="one label per image: 3 predictions but 2 labels"):
        confusion_cells(np.zeros((3, 2)), np.zeros(2, int))
    with pytest.raises(MethodError, match="classes 0 .. 1"):
        confusion_cells(np.zeros((2, 2)), np.array([0, 2]))
    with pytest.raises(MethodError, match="cap must be at least 1"):
        confusion_cells(np.zeros((2, 2)), np.array([0, 1]), cap=0)


def test_top_confusions_are_the_largest_off_diagonal_cells() -> None:
    rng = np.random.default_rng(2)
    matrix = rng.integers(0, 4, size=(7, 7))
    off = [(-int(matrix[i, j]), i, j) for i in range(7) for j in range(7) if i != j and matrix[i, j]]
    assert top_confusions(matrix, 10) == [(i, j) for _, i, j in sorted(off)[:10]]
    assert top_confusions(np.diag([5, 3]), 10) == []


def test_one_cap_for_every_cell_fills_the_total() -> None:
    counts = np.array([100, 3, 1, 40])
    for total in (4, 10, 50, 500):
        c = per_cell_cap(counts, total, cap=24)
        assert np.minimum(counts, c).sum() <= total
        assert c == 24 or np.minimum(counts, c + 1).sum() > total  # the largest such cap
    assert per_cell_cap(counts, 3) == 0  # not one image a cell fits


def test_softmax_maps_are_the_exact_contributions_of_the_predicted_class() -> None:
    x = FOUR_IMAGES
    k = np.array([2, 0, 1, 2])
    result = predicted_maps(softmax_2x2(), x, k, (1, 2, 2), batch=3)  # two batches
    assert result.kind == "contributions"
    want = np.stack([x[n].reshape(4) * SOFTMAX_W[k[n]] for n in range(4)]).reshape(4, 1, 2, 2)
    np.testing.assert_allclose(result.maps, want, rtol=1e-6)


def test_mlp_maps_are_the_pixels_of_the_top_voting_unit() -> None:
    x = FOUR_IMAGES
    k = np.array([0, 1, 1, 0])
    result = predicted_maps(mlp_2x2(), x, k, (1, 2, 2))
    flat = x.reshape(4, 4).astype(np.float64)
    hidden = np.maximum(flat @ MLP_W1.T + MLP_B1, 0)  # relu(W_1 x + b_1)
    votes = MLP_W2[k] * hidden  # W_out[k, j] h_j
    best = votes.argmax(1)
    assert result.kind == "unit" and result.units.tolist() == best.tolist()
    np.testing.assert_allclose(result.votes, votes[np.arange(4), best], rtol=1e-6)
    np.testing.assert_allclose(result.maps.reshape(4, 4), flat * MLP_W1[best], rtol=1e-6)


def test_other_models_get_gradient_x_input_summed_over_channels() -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(),
                                torch.nn.Linear(4 * 5 * 5, 3))
    x = np.random.default_rng(0).normal(size=(5, 3, 5, 5)).astype(np.float32)
    k = np.array([0, 1, 2, 1, 0])
    result = predicted_maps(model, x, k, (3, 5, 5), batch=2)
    assert result.kind == "gradient-x-input" and result.maps.shape == (5, 1, 5, 5)
    for n in range(5):  # one image at a time, autograd by hand
        xt = torch.tensor(x[n:n + 1], requires_grad=True)
        model(xt)[0, k[n]].backward()
        want = (xt * xt.grad).sum(1, keepdim=True).detach().numpy()[0]
        np.testing.assert_allclose(result.maps[n], want, rtol=1e-5, atol=1e-6)
