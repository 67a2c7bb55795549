"""Full-batch L-BFGS softmax regression (784 -> 10) on Fashion-MNIST: nnsee's ``fit`` vs scikit-learn.

nnsee minimizes ``mean_i CE_i + (λ/2)‖W‖²``; scikit-learn's ``LogisticRegression`` ``C Σ_i CE_i + ½‖W‖²``, the same
minimizer when ``λ = 1 / (C n)`` (neither penalizes the bias). Both run 100 L-BFGS iterations: nnsee through
``TrainConfig(optimizer="lbfgs", lbfgs_iterations=100, epochs=1)`` (``torch.optim.LBFGS``, strong-Wolfe line
search, history 20), scikit-learn through scipy's L-BFGS-B (``tol=0`` so that its gradient test does not stop
it early; history 10, its own line search). Iterations and function evaluations are counted for both.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from benchmarks.common import (
    DATASET,
    CpuWatch,
    Data,
    IdleGate,
    Section,
    Target,
    clean_rounds,
    fmt_acc,
    fmt_s,
    median,
    rotated,
    timed,
)

C = 1.0
SPEEDUP_TARGET = 1.5
ACCURACY_GAP = 0.005


@contextlib.contextmanager
def _count_torch_lbfgs(counts: dict[str, int]) -> Iterator[None]:
    """Record ``n_iter`` and ``func_evals`` of every ``torch.optim.LBFGS.step`` in the block (a thin wrapper)."""
    original = torch.optim.LBFGS.step

    def step(self: torch.optim.LBFGS, closure: Any) -> Any:
        result = original(self, closure)
        state = self.state[self._params[0]]
        counts["iterations"] = int(state.get("n_iter", 0))
        counts["function_evaluations"] = int(state.get("func_evals", 0))
        return result

    torch.optim.LBFGS.step = step  # type: ignore[method-assign]
    try:
        yield
    finally:
        torch.optim.LBFGS.step = original  # type: ignore[method-assign]


@contextlib.contextmanager
def _count_scipy_minimize(counts: dict[str, int]) -> Iterator[None]:
    """Record ``nit`` and ``nfev`` of the ``scipy.optimize.minimize`` calls in the block."""
    from scipy import optimize

    original = optimize.minimize

    def minimize(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        counts["iterations"] = int(result.nit)
        counts["function_evaluations"] = int(result.nfev)
        return result

    optimize.minimize = minimize
    try:
        yield
    finally:
        optimize.minimize = original


class Nnsee:
    """The public ``fit`` on a softmax model; also its own epoch time (the L-BFGS step, train scoring, history)."""

    name = "nnsee fit"

    def __init__(self, data: Data, iterations: int, seed: int) -> None:
        from nnsee.data.imageset import Splits
        from nnsee.train import TrainConfig

        self.data, self.seed = data, seed
        self.l2 = 1.0 / (C * len(data.train))
        self.splits = Splits(data.train, data.train.subset(np.zeros(0, np.int64)), data.test, {"name": DATASET})
        self.config = TrainConfig(optimizer="lbfgs", lbfgs_iterations=iterations, epochs=1, l2=self.l2,
                                  standardize="image", seed=seed)

    def run(self) -> dict[str, Any]:
        from nnsee.models import build_model
        from nnsee.train import fit

        torch.manual_seed(self.seed)
        model = build_model("softmax", self.data.train.shape, self.data.train.n_classes)
        counts: dict[str, int] = {}
        with _count_torch_lbfgs(counts):
            seconds, result = timed(lambda: fit(model, self.splits, self.config, out=None, progress=False))
        return {"seconds": seconds, "epoch_seconds": float(result.history["seconds"][0]),
                "accuracy": float(result.metrics["test"]["accuracy"]), **counts}


class Sklearn:
    """``LogisticRegression(solver="lbfgs", C=C, max_iter=100, tol=0)`` on the same standardized arrays."""

    name = "sklearn"

    def __init__(self, data: Data, iterations: int, seed: int) -> None:
        self.data, self.iterations, self.seed = data, iterations, seed

    def run(self) -> dict[str, Any]:
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.linear_model import LogisticRegression

        model = LogisticRegression(solver="lbfgs", C=C, max_iter=self.iterations, tol=0.0)
        counts: dict[str, int] = {}
        with warnings.catch_warnings(), _count_scipy_minimize(counts):
            warnings.simplefilter("ignore", ConvergenceWarning)
            seconds, _ = timed(lambda: model.fit(self.data.x_train, self.data.y_train))
        accuracy = float((model.predict(self.data.x_test) == self.data.y_test).mean())
        return {"seconds": seconds, "epoch_seconds": float("nan"), "accuracy": accuracy, **counts}


def run(data: Data, iterations: int, repeats: int, seed: int, quick: bool, gate: IdleGate, log: Any) -> Section:
    contenders = [Nnsee(data, iterations, seed), Sklearn(data, iterations, seed)]
    runs: dict[str, list[dict[str, Any]]] = {c.name: [] for c in contenders}
    others: list[float | None] = []
    for r in range(repeats):
        gate.wait()
        watch = CpuWatch()
        for c in rotated(contenders, r):
            runs[c.name].append(c.run())
        others.append(watch.others_cores())
        busy = f" [others used {others[-1]:.2f} cores: disturbed]" if r not in clean_rounds(others) else ""
        log(f"  L-BFGS repeat {r + 1}/{repeats}: "
            + ", ".join(f"{name} {rs[-1]['seconds']:.3f}s" for name, rs in runs.items()) + busy)
    keep = clean_rounds(others) or list(range(repeats))
    if len(keep) < repeats:
        dropped = repeats - len(keep)
        runs = {name: [rs[i] for i in keep] for name, rs in runs.items()}
        note = f"{dropped} of {repeats} repeats disturbed by other processes were left out of the medians"
    else:
        note = ""

    section = Section(
        f"Softmax regression, full-batch L-BFGS, {iterations} iterations, C={C:g} (nnsee l2 = 1/(C n) = "
        f"{1 / (C * len(data.train)):.3g}) ({data.note}; median of {repeats} interleaved repeats)",
        ["contender", "median s", "min s", "iterations", "f-evals", "s / f-eval", "test acc"],
    )
    med = {}
    for name, rs in runs.items():
        med[name] = median([r["seconds"] for r in rs])
        last = rs[-1]
        evals = last.get("function_evaluations")
        section.rows.append([name, fmt_s(med[name]), fmt_s(min(r["seconds"] for r in rs)),
                             str(last.get("iterations", "-")), str(evals or "-"),
                             f"{med[name] / evals * 1e3:.1f} ms" if evals else "-", fmt_acc(last["accuracy"])])
    speedup = med["sklearn"] / med["nnsee fit"]
    epoch = median([r["epoch_seconds"] for r in runs["nnsee fit"]])
    gap = abs(runs["nnsee fit"][-1]["accuracy"] - runs["sklearn"][-1]["accuracy"])
    section.notes += [
        f"nnsee is {speedup:.2f}x faster than sklearn (wall time of the public fit(), which also standardizes the "
        f"data and scores val/test; fit's own epoch time, the L-BFGS step plus train scoring: {epoch:.3f}s, "
        f"{med['sklearn'] / epoch:.2f}x)",
        "sklearn: LogisticRegression.fit on the pre-standardized arrays (its input checks included), tol=0; "
        "s / f-eval = wall time / function evaluations",
    ]
    skip = "--quick: subset, not judged" if quick else ""
    section.targets += [
        Target("nnsee speed-up over sklearn (median wall time)", speedup, ">=", SPEEDUP_TARGET, skip=skip),
        Target("test accuracy gap |nnsee - sklearn|", gap, "<=", ACCURACY_GAP, ".4f", skip=skip),
    ]
    if note:
        section.notes.insert(0, note)
    iters = {name: rs[-1].get("iterations") for name, rs in runs.items()}
    if len(set(iters.values())) > 1:
        section.notes.append(f"the iteration counts differ ({iters}): one optimizer stopped before {iterations}")
    section.raw = {"runs": runs, "iterations": iterations, "C": C, "others_cores": others}
    return section
