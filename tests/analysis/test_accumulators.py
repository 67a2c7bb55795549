"""Every accumulator is associative: parts merged in any grouping equal one pass, exactly (ties included)."""

from __future__ import annotations

import functools
import itertools

import numpy as np
import pytest
import torch

from nnsee.analysis.accumulators import Accumulators
from nnsee.analysis.topk import TopK
from nnsee.errors import RunError

N, F, K, CLASSES = 60, 5, 4, 3


def _batches(seed: int = 0) -> list[tuple[np.ndarray, torch.Tensor, np.ndarray, np.ndarray, np.ndarray]]:
    """(positions, activations (B, F, 3, 3) with many exact ties, labels, predictions, maps) in batches of 7."""
    rng = np.random.default_rng(seed)
    acts = torch.from_numpy(rng.integers(0, 4, size=(N, F, 3, 3)).astype(np.float32))  # values 0..3: ties galore
    labels, predicted = rng.integers(0, CLASSES, N), rng.integers(0, CLASSES, N)
    maps = rng.normal(size=(N, 1, 4, 4)).astype(np.float32)
    return [(np.arange(a, min(N, a + 7)), acts[a:a + 7], labels[a:a + 7], predicted[a:a + 7], maps[a:a + 7])
            for a in range(0, N, 7)]


def _fill(acc: Accumulators, parts: list) -> Accumulators:
    for positions, acts, labels, predicted, maps in parts:
        acc.predictions.add(positions, predicted, labels)
        acc.confusion.add(labels, predicted)
        acc.topk["layer"].add(acts, torch.from_numpy(positions))
        acc.means["saliency"].add(maps, labels)
        acc.skipped.add([(int(positions[0]), f"f{positions[0]}.png", "unreadable")])
    return acc


def _new() -> Accumulators:
    return Accumulators(N, CLASSES, ["layer"], K, ["saliency"], {"run": {"weights": "w"}, "data": {}, "options": {}})


def _same(a: Accumulators, b: Accumulators) -> None:
    sa, sb = a.state(), b.state()
    assert sa.keys() == sb.keys()
    for key in sa:
        if key.startswith("means:"):
            np.testing.assert_allclose(sa[key], sb[key], rtol=1e-13, atol=1e-13, err_msg=key)
        else:
            np.testing.assert_array_equal(sa[key], sb[key], err_msg=key)


def test_parts_merged_in_any_grouping_equal_one_pass() -> None:
    batches = _batches()
    whole = _fill(_new(), batches)
    cuts = [batches[:3], batches[3:4], batches[4:]]  # three "ranks"
    parts = [_fill(_new(), c) for c in cuts]
    for order in itertools.permutations(range(3)):
        ordered = [Accumulators.from_state(parts[i].state()) for i in order]  # through the saved state too
        _same(functools.reduce(Accumulators.merge, ordered), whole)
    _same(parts[0].merge(parts[1].merge(parts[2])), whole)


@pytest.mark.parametrize("order", ["ascending", "reversed", "shuffled within batches"])
def test_topk_equals_a_brute_force_over_every_activation_ties_to_the_lower_position(order: str) -> None:
    batches = _batches(1)
    acts = torch.cat([b[1] for b in batches]).double().numpy()  # every activation kept
    top = TopK(K)
    rng = np.random.default_rng(2)
    for positions, a, *_ in (reversed(batches) if order == "reversed" else batches):
        mix = rng.permutation(len(positions)) if order.startswith("shuffled") else np.arange(len(positions))
        top.add(a[mix], torch.from_numpy(positions[mix]))
    got = top.result()
    flat = acts.reshape(N, F, -1)
    for f in range(F):
        score = flat[:, f].max(axis=1)
        order = np.lexsort((np.arange(N), -score))[:K]  # value descending, then position ascending
        np.testing.assert_array_equal(got["index"][f], order)
        np.testing.assert_array_equal(got["values"][f], score[order])
        first = flat[order, f].argmax(axis=1)  # first maximum in row-major order
        np.testing.assert_array_equal(got["position"][f], np.stack([first // 3, first % 3], -1))


def test_merge_refuses_parts_of_another_run_or_the_same_image_twice() -> None:
    batches = _batches()
    a = _fill(_new(), batches[:2])
    other = _new()
    other.fingerprint = {"run": {"weights": "other"}, "data": {}, "options": {}}
    with pytest.raises(RunError, match="different runs, data or options.*run.weights 'w' -> 'other'"):
        a.merge(_fill(other, batches[2:]))
    with pytest.raises(RunError, match="analyzed by two parts"):
        a.merge(_fill(_new(), batches[1:3]))
