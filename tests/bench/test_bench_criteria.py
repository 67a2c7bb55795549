"""The benchmarks' criteria can fail (issue 9, items 6-11): planted bugs make them print FAIL and exit non-zero.

Tiny occlusion cases (24x24 images, where the region path skips about half the work, so ``recompute="auto"`` takes
it; overlapping windows, two Captum settings, one round) run through ``python -m benchmarks``'s own ``main``; the
speed judgements are also fed synthetic medians, since real timings of tiny problems say nothing.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import benchmarks.__main__ as bench_main
from benchmarks import mlp_epoch
from benchmarks import occlusion as occ
from benchmarks.common import Data, Section, Target, exit_status
from nnsee.models import build_model

# the module (the package's ``occlusion`` attribute is the function)
nnsee_occlusion = importlib.import_module("nnsee.methods.attribution.occlusion")


def tiny_plan(quick: bool, seed: int) -> occ.Plan:
    """Two small cases with overlapping windows: a batch of two grey images, one RGB image."""
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    grey, rgb = build_model("cnn", (1, 24, 24), 10).eval(), build_model("cnn", (3, 24, 24), 10).eval()
    sweep = ((1, 8, 32), 32, 0.0)
    return occ.Plan(
        cases=[occ.Case("tiny batch", grey, torch.rand(2, 1, 24, 24, generator=gen), torch.tensor([3, 7]), 4, 2,
                        1.0, 1.0, 1.0, sweep=sweep),
               occ.Case("tiny rgb", rgb, torch.rand(1, 3, 24, 24, generator=gen), 5, 5, 3, 1.0, 1.0, 1.0,
                        sweep=sweep)],
        rounds=1, per_eval=(1, 16))


@pytest.fixture
def tiny(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The tiny plan, and torch's thread count restored after the run's ``--threads 1``."""
    monkeypatch.setattr(occ, "plan", tiny_plan)
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def run_bench(tmp_path: Path, *args: str) -> tuple[int, dict[str, str]]:
    """``python -m benchmarks --only occlusion --max-wait 0 --threads 1 ARGS``: its exit status and every target's
    verdict (one thread: tiny problems on a busy 2-core machine otherwise wait on each other's threads)."""
    out = tmp_path / "bench.json"
    rc = bench_main.main(["--only", "occlusion", "--max-wait", "0", "--threads", "1", "--json", str(out), *args])
    sections = json.loads(out.read_text())["sections"]
    return rc, {t["name"]: t["verdict"] for s in sections for t in s["targets"]}


def pick(verdicts: dict[str, str], part: str) -> list[str]:
    found = [v for name, v in verdicts.items() if part in name]
    assert len(found) == 2, (part, verdicts)  # one per tiny case
    return found


MAP_TARGETS = ("region map error e", "full-pass map error e", "Captum's float32 map error e",
               "region map in float64, error e")


def test_quick_run_judges_the_maps_and_passes(tiny: None, tmp_path: Path) -> None:
    rc, verdicts = run_bench(tmp_path, "--quick")
    assert rc == 0, verdicts
    for part in MAP_TARGETS:
        assert pick(verdicts, part) == ["PASS", "PASS"]
    assert pick(verdicts, "full passes / forward floor") == ["n/a", "n/a"]  # --quick: speed not judged


def test_scaled_region_drop_fails(tiny: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every window's drop 0.1 % too large, in the region recomputation only: its maps FAIL, the rest PASS."""
    original = nnsee_occlusion._region_drops

    def scaled(*args: Any, **kwargs: Any) -> torch.Tensor:
        return original(*args, **kwargs) * 1.001

    monkeypatch.setattr(nnsee_occlusion, "_region_drops", scaled)
    rc, verdicts = run_bench(tmp_path, "--quick")
    assert rc == 1
    assert pick(verdicts, "region map error e") == ["FAIL", "FAIL"]
    assert pick(verdicts, "region map in float64, error e") == ["FAIL", "FAIL"]
    assert pick(verdicts, "full-pass map error e") == ["PASS", "PASS"]
    assert pick(verdicts, "Captum's float32 map error e") == ["PASS", "PASS"]


def test_wrong_reference_fails(tiny: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A reference at another stride than the one benchmarked (the old float64 cross-check's mistake)."""
    original = occ.reference
    monkeypatch.setattr(occ, "reference", lambda case: original(dataclasses.replace(case, stride=case.stride + 1)))
    rc, verdicts = run_bench(tmp_path, "--quick")
    assert rc == 1
    for part in MAP_TARGETS:
        assert pick(verdicts, part) == ["FAIL", "FAIL"]


def test_slow_full_passes_fail_against_the_floor(tiny: None, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Full passes that idle 0.2 s per chunk: far above the forward floor, so the (unquick) run exits 1."""
    original = nnsee_occlusion.occluded_chunks

    def slow(*args: Any, **kwargs: Any) -> Any:
        for chunk in original(*args, **kwargs):
            time.sleep(0.2)
            yield chunk

    monkeypatch.setattr(nnsee_occlusion, "occluded_chunks", slow)
    rc, verdicts = run_bench(tmp_path)
    assert rc == 1
    assert pick(verdicts, "full passes / forward floor") == ["FAIL", "FAIL"]


def occlusion_figures(**times: float) -> dict[str, Any]:
    t = {"Captum ppe 1": 10.0, "Captum ppe 8": 4.0, "ours region": 1.0, "ours full": 3.0, **times}
    errors = {"ours region": 30.0, "ours full": 30.0, "Captum ppe 1": 30.0, "ours region float64": 1e-6}
    return {"times": t, "floor": 3.0, "best": "Captum ppe 8", "errors": errors}


@pytest.mark.parametrize(("times", "failing"), [
    ({}, None),
    ({"ours full": 3.4}, "full passes / forward floor"),  # 1.13x the floor
    ({"Captum ppe 8": 1.5}, "region speed-up over Captum's best"),  # 1.5 < 2
    ({"ours region": 1.6}, "region speed-up over full passes"),  # 3.0 / 1.6 = 1.9 < 2
    ({"Captum ppe 1": 2.9}, "region speed-up over Captum's default"),  # 2.9 < 3
])
def test_occlusion_speed_judgements(times: dict[str, float], failing: str | None) -> None:
    case = occ.Case("synthetic", None, None, 0, 4, 1, vs_default=3.0, vs_best=2.0, vs_full=2.0)
    targets = occ.judge(case, occlusion_figures(**times), quick=False)
    failed = [t.name.removeprefix("synthetic: ") for t in targets if t.passed is False]
    assert len(failed) == (failing is not None) and all(name.startswith(str(failing)) for name in failed)
    assert exit_status(targets) == int(failing is not None)
    assert all(t.passed is None for t in occ.judge(case, occlusion_figures(**times), quick=True)[:4])


@pytest.mark.parametrize(("batch", "nnsee", "sklearn", "failing"), [
    (256, 1.35, 1.9, []),
    (256, 1.45, 2.1, ["floor"]),  # 1.45x the floor > 1.4
    (128, 1.75, 2.5, []),
    (128, 1.85, 2.6, ["floor"]),  # > 1.8
    (256, 1.30, 1.7, ["sklearn"]),  # 1.7 / 1.3 = 1.31x < 1.4
])
def test_mlp_judgements(batch: int, nnsee: float, sklearn: float, failing: list[str]) -> None:
    med = {"nnsee fit": nnsee, "torch loop": 1.5, "sklearn": sklearn, "floor": 1.0}
    targets = mlp_epoch.judge(batch, 10, med, 0.88)
    failed = [t.name for t in targets if t.passed is False]
    assert [next(k for k in ("floor", "sklearn", "accuracy") if k in name) for name in failed] == failing
    assert exit_status(targets) == int(bool(failing))


def test_the_floor_runs_exactly_the_five_products(monkeypatch: pytest.MonkeyPatch) -> None:
    """The floor's FLOPs, counted from the shapes of the products it actually runs, equal the analytic count:
    per image 2 (784·300 + 300·10) forward, 2 (300·784 + 10·300) weight gradients, 2·10·300 the hidden input
    gradient; 57.528 GFLOP for 60,000 images."""
    n, counted = 1000, []

    def count(fn: Any) -> Any:
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            a, b = args[-2], args[-1]
            counted.append(2 * a.shape[0] * a.shape[1] * b.shape[1])
            return fn(*args, **kwargs)
        return wrapped

    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, 784)).astype(np.float32)
    data = Data(None, None, x, np.zeros(n, np.int64), x[:10], np.zeros(10, np.int64))
    floor = mlp_epoch.Floor(data, 128, 0)
    monkeypatch.setattr(torch, "mm", count(torch.mm))
    monkeypatch.setattr(torch, "addmm", count(torch.addmm))
    floor.epoch()
    per_image = 2 * (784 * 300 + 300 * 10) + 2 * (300 * 784 + 10 * 300) + 2 * 10 * 300
    assert sum(counted) == n * per_image == floor.flops_per_epoch
    assert mlp_epoch.floor_flops(60_000, 784, 300, 10) == pytest.approx(57.528e9, rel=1e-12)


def test_exit_status_counts_only_judged_failures() -> None:
    section = Section("s", ["a"], targets=[Target("ok", 1.0, "<=", 2.0), Target("quick", 3.0, "<=", 2.0, skip="q")])
    assert exit_status(section.targets) == 0
    section.targets.append(Target("bad", 3.0, "<=", 2.0))
    assert exit_status(section.targets) == 1


@pytest.mark.parametrize("value", [None, float("nan")])
def test_an_unmeasured_value_fails_unless_skipped(value: float | None) -> None:
    """A measurement that crashed (the top-9 memory child, say) must not turn into a silent n/a."""
    assert Target("memory", value, "<=", 128.0).verdict == "FAIL"
    assert exit_status([Target("memory", value, "<=", 128.0)]) == 1
    assert Target("memory", value, "<=", 128.0, skip="--quick").verdict == "n/a"


def test_commit_comparison_flags_only_moves_toward_the_bound_beyond_the_noise() -> None:
    from benchmarks.commits import toward_bound

    assert toward_bound("<=", 1.1, 1.00, 1.20) == pytest.approx(0.2 / 1.1)  # slower: toward a ≤ bound
    assert toward_bound("<=", 1.1, 1.20, 1.00) < 0  # faster
    assert toward_bound(">=", 1.7, 2.5, 2.0) == pytest.approx(0.5 / 2.5)  # less speedup: toward a ≥ bound
    assert toward_bound(">=", 1.7, 2.0, 2.5) < 0
    assert toward_bound("<=", 1e-5, 1e-7, 3e-7) < 0.15  # correctness noise far under its bound is no change
    assert toward_bound(">=", 5.0, 21.4, 20.2) == pytest.approx(1.2 / 21.4)  # a large speed-up: by its own size
