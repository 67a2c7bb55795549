"""The online chunk tuner (nnsee/models/chunking.py) on fake workloads whose time per item is known: a test clock
advances by what each span would cost, so the fastest size is known in advance."""

from __future__ import annotations

import gc

import numpy as np
import pytest
import torch

from nnsee.errors import MethodError
from nnsee.models import chunking
from nnsee.models.chunking import Tuner, candidates, cap_for, chunk_key


class Workload:
    """Seconds for a span of ``b`` items: ``b * per_item(b)``, times ``warmup`` the first time a size is seen."""

    def __init__(self, per_item, warmup: float = 1.0, burst=lambda i, b: 1.0) -> None:
        self.now, self.per_item, self.warmup, self.warm, self.burst = 0.0, per_item, warmup, set(), burst
        self.sizes: list[int] = []

    def clock(self) -> float:
        return self.now

    def run(self, tuner: Tuner, total: int, key, cap: int, **kw) -> list[int]:
        spans = []
        for start, stop in tuner.chunks(total, key, cap, **kw):
            b = stop - start
            slow = (1.0 if b in self.warm else self.warmup) * self.burst(len(self.sizes) + len(spans), b)
            self.now += b * self.per_item(b) * slow
            self.warm.add(b)
            spans.append((start, stop))
        assert [s for s, _ in spans] == [0, *(e for _, e in spans[:-1])] and spans[-1][1] == total
        sizes = [e - s for s, e in spans]
        self.sizes += sizes
        return sizes


def u_shaped(b: int) -> float:
    """Per-item time 1/b + b/100: fastest at b = 10, so at 8 among powers of two (0.205; 16: 0.2225; 4: 0.29)."""
    return 1 / b + b / 100


def test_picks_the_fastest_size_despite_warm_up_outliers() -> None:
    work = Workload(u_shaped, warmup=6.0)  # every size's first span 6x slower, as a new batch shape's first pass
    tuner = Tuner(clock=work.clock)
    work.run(tuner, 400, ("k",), cap=100)
    assert tuner.chosen(("k",)) == 8
    explored = work.sizes[: work.sizes.index(8, 4) + 1]
    assert max(explored) <= 32 and sum(explored) < 120  # the search stops soon after the optimum


@pytest.mark.parametrize(("per_item", "best"), [(lambda b: 1 / b, 48), (lambda b: 1 + b / 10, 1),
                                                (lambda b: 1 / b + b / 300, 16)])
def test_other_curves(per_item, best: int) -> None:
    """Falling to the cap (48, not a power of two), rising from 1, and an optimum at 16 (8: 0.152, 16: 0.116,
    32: 0.138 per item)."""
    work = Workload(per_item, warmup=3.0)
    tuner = Tuner(clock=work.clock)
    work.run(tuner, 2000, ("k",), cap=48)
    assert tuner.chosen(("k",)) == best


def test_bursts_of_other_processes_neither_end_the_search_nor_move_the_choice() -> None:
    """Per-item time 1/b (the cap, 64, is fastest). A 10x burst on the first span at 8 must not end the search
    there; later, a 20x burst on every 3rd span must not move the settled choice (a size's figure is its least)."""
    seen_8, storm = [], []

    def burst(i: int, b: int) -> float:
        if storm:
            return 20.0
        if b == 8 and not seen_8:
            seen_8.append(i)
            return 10.0
        return 20.0 if i > 100 and i % 3 == 0 else 1.0

    work = Workload(lambda b: 1 / b, burst=burst)
    tuner = Tuner(clock=work.clock)
    work.run(tuner, 400, ("b",), cap=64)
    assert tuner.chosen(("b",)) == 64
    for _ in range(40):
        work.run(tuner, 640, ("b",), cap=64)
    assert tuner.chosen(("b",)) == 64
    assert sum(1 for s in work.sizes[-400:] if s >= 60) / 400 > 0.95  # 64, or near it where evenly filled
    storm.append(True)  # one more call with every span 20x slower: a size's figure stays its least
    work.run(tuner, 640, ("b",), cap=64)
    assert tuner.measured(("b",))[64] == pytest.approx(1 / 64)


def test_caps_hold_and_spans_cover_the_range() -> None:
    work = Workload(lambda b: 1 / b)
    tuner = Tuner(clock=work.clock)
    for total in (1, 7, 100, 1000):
        sizes = work.run(tuner, total, ("cap",), cap=6)
        assert max(sizes) <= 6 and sum(sizes) == total
    assert candidates(6) == [1, 2, 4, 6] and candidates(1) == [1] and candidates(8) == [1, 2, 4, 8]
    assert tuner.chosen(("cap",)) == 6
    sizes = work.run(tuner, 100, ("cap",), cap=3)  # a smaller cap later (another caller's memory bound) holds
    assert max(sizes) <= 3
    assert cap_for((3, 224, 224), 1 << 21) == 13 and cap_for((1, 28, 28), 1 << 22) == 4096
    assert cap_for((3, 4096, 4096), 1 << 21) == 1


def test_settled_keys_start_at_the_chosen_size_and_keys_are_separate() -> None:
    work = Workload(u_shaped, warmup=2.0)
    tuner = Tuner(clock=work.clock)
    work.run(tuner, 300, ("a",), cap=64)
    assert tuner.chosen(("a",)) == 8
    assert work.run(tuner, 40, ("a",), cap=64) == [8] * 5  # straight at the chosen size, no search
    assert work.run(tuner, 3, ("b",), cap=64) == [1, 2]  # another key searches afresh
    assert work.run(tuner, 20, ("b",), cap=64)[:2] == [4, 8]  # ...resuming where it stopped


def test_rechecks_follow_a_machine_whose_answer_changed() -> None:
    cost = {"f": u_shaped}
    work = Workload(lambda b: cost["f"](b))
    tuner = Tuner(clock=work.clock)
    work.run(tuner, 300, ("m",), cap=64)
    assert tuner.chosen(("m",)) == 8
    cost["f"] = lambda b: 1 / b  # now bigger is better: rechecks at the neighbours move the choice up
    for _ in range(20):
        work.run(tuner, 1000, ("m",), cap=64)
    assert tuner.chosen(("m",)) == 64
    share = sum(1 for s in work.sizes[-200:] if s >= 60) / 200  # 1000 items at 64, evenly filled: 63 and 62
    assert share > 0.9


def test_an_early_choice_is_rechecked_within_a_few_calls() -> None:
    """Spans 8, 16 and 32 after the search run at a neighbour (up, down, up): a machine whose answer changed right
    after the search (8 was best, now bigger is better) is followed within 40 spans, not only after 64."""
    cost = {"f": u_shaped}
    work = Workload(lambda b: cost["f"](b))
    tuner = Tuner(clock=work.clock)
    while tuner.chosen(("r",)) is None:
        work.run(tuner, 8, ("r",), cap=64)
    cost["f"] = lambda b: 1 / b
    spans = len(work.sizes)
    while len(work.sizes) < spans + 40:
        work.run(tuner, 64, ("r",), cap=64)
    assert tuner.chosen(("r",)) >= 32


def test_a_search_ended_by_a_burst_resumes() -> None:
    """Per-item time 1/b, but the first three spans at size 2 are 10x slower (a burst lasting three spans): the
    search ends at 1; the first recheck at 2 (span 8 after) finds it faster and the search goes on, up to the cap
    (one size per recheck would not be past 4 after 100 spans)."""
    hits = []

    def burst(i: int, b: int) -> float:
        if b == 2 and len(hits) < 3:
            hits.append(i)
            return 10.0
        return 1.0

    work = Workload(lambda b: 1 / b, burst=burst)
    tuner = Tuner(clock=work.clock)
    while tuner.chosen(("s",)) is None:
        work.run(tuner, 64, ("s",), cap=64)
    assert len(hits) == 3 and work.sizes.count(1) >= 3  # the search ended at 1: 2's three spans were bursts
    spans = len(work.sizes)
    while len(work.sizes) < spans + 100:
        work.run(tuner, 64, ("s",), cap=64)
    assert tuner.chosen(("s",)) == 64


def test_explicit_batch_size_wins() -> None:
    work = Workload(u_shaped)
    tuner = Tuner(clock=work.clock)
    assert work.run(tuner, 50, ("e",), cap=4, batch_size=16) == [16, 16, 16, 2]  # above the cap too: the user's
    assert tuner.measured(("e",)) == {} and tuner.chosen(("e",)) is None  # nothing timed or remembered
    with pytest.raises(MethodError, match="batch_size must be at least 1"):
        list(tuner.chunks(5, ("e",), 4, batch_size=0))


def test_keys_of_a_collected_model_are_forgotten() -> None:
    model = torch.nn.Linear(3, 2)
    key = chunk_key(model, "forward", (3,), torch.float32, "cpu")
    assert key[2:6] == ("forward", (3,), "torch.float32", "cpu")
    list(chunking.chunks(10, key, cap=4))
    assert chunking.TUNER.measured(key)
    del model
    gc.collect()
    assert chunking.TUNER.measured(key) == {}


# ------------------------------------------------------------------ the tuned methods give the same numbers


def _cnn(channels: int = 3, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Conv2d(channels, 4, 3), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                               torch.nn.Flatten(), torch.nn.Linear(4 * 5 * 5, 6)).double().eval()


def _ig_by_hand(model: torch.nn.Module, x: torch.Tensor, targets: list[int], steps: int) -> np.ndarray:
    """x ⊙ Σ_i w_i ∇f(α_i x), baseline 0, Gauss–Legendre α_i = (1 + t_i)/2, w_i = u_i/2, all points in one batch."""
    t, u = np.polynomial.legendre.leggauss(steps)
    alphas, weights = torch.from_numpy((1 + t) / 2), torch.from_numpy(u / 2)
    points = (alphas.view(-1, 1, 1, 1, 1) * x).reshape(-1, *x.shape[1:]).requires_grad_(True)
    out = model(points).reshape(steps, len(x), -1)[:, torch.arange(len(x)), targets]
    (grad,) = torch.autograd.grad(out.sum(), points)
    return (x * (weights.view(-1, 1, 1, 1, 1) * grad.reshape(steps, *x.shape)).sum(0)).detach().numpy()


def test_integrated_gradients_are_the_same_whatever_the_tuner_does() -> None:
    """Float64: the first calls (searching: spans 1, 2, 4, ...), the settled calls and batch_size=1 all equal IG
    written by hand over one batch of all path points within float64 rounding."""
    from nnsee.methods.attribution.integrated_gradients import integrated_gradients

    model = _cnn()
    x = torch.rand(2, 3, 12, 12, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    ref = _ig_by_hand(model, x, [1, 4], 50)
    key = chunk_key(model, "ig", (3, 12, 12), torch.float64, torch.device("cpu"))
    for _ in range(30):
        got = integrated_gradients(model, x, [1, 4], steps=50).attributions
        np.testing.assert_allclose(got, ref, rtol=0, atol=1e-12 * np.abs(ref).max())
        if chunking.TUNER.chosen(key) is not None:
            break
    assert chunking.TUNER.chosen(key) is not None  # the tuner searched and settled, under the documented key
    for batch_size in (None, 1):
        got = integrated_gradients(model, x, [1, 4], steps=50, batch_size=batch_size).attributions
        np.testing.assert_allclose(got, ref, rtol=0, atol=1e-12 * np.abs(ref).max())


def test_evaluate_logits_equal_one_forward_whatever_the_tuner_does() -> None:
    """predict_logits over 700 images (the search's spans, then the settled size, evenly filled) equals one forward
    of all the images, float64 (predict_logits returns float32: within its rounding)."""
    from nnsee.train.evaluate import predict_logits

    model = _cnn(1)
    images = np.random.default_rng(0).random((700, 1, 12, 12))
    with torch.no_grad():
        ref = model(torch.from_numpy(images)).numpy()
    key = chunk_key(model, "forward", (1, 12, 12), torch.float64, torch.device("cpu"))
    for _ in range(30):
        np.testing.assert_allclose(predict_logits(model, images), ref, rtol=0, atol=1e-7 * np.abs(ref).max())
        if chunking.TUNER.chosen(key):
            break
    assert chunking.TUNER.chosen(key)
    np.testing.assert_allclose(predict_logits(model, images), ref, rtol=0, atol=1e-7 * np.abs(ref).max())


def test_smoothgrad_is_the_same_whatever_the_tuner_does() -> None:
    """The noise is drawn per sample in order, so tuned passes, one copy per pass and all copies in one pass give
    the same map within float64 rounding."""
    from nnsee.methods.attribution.registry import METHODS
    from nnsee.methods.attribution.smoothgrad import noise_tunnel

    model = _cnn()
    x = torch.rand(2, 3, 12, 12, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    ref = noise_tunnel(METHODS["saliency"].run, model, x, [0, 5], samples=40, seed=3, batch_size=40)
    for batch_size in (None,) * 6 + (1,):
        got = noise_tunnel(METHODS["saliency"].run, model, x, [0, 5], samples=40, seed=3, batch_size=batch_size)
        np.testing.assert_allclose(got, ref, rtol=0, atol=1e-12 * np.abs(ref).max())
