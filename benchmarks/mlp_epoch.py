"""Seconds per epoch of the 784-300-10 tanh MLP (Adam, lr 1e-3, no L2) on Fashion-MNIST, four contenders.

* ``nnsee fit``: nnsee's training loop, one epoch of ``fit`` per round (see :class:`NnseeFit`).
* ``torch loop``: the textbook PyTorch loop: plain ``torch.optim.Adam``, ``x[idx]`` batches, ``zero_grad()``.
* ``sklearn``: ``MLPClassifier(hidden_layer_sizes=(300,), activation="tanh", solver="adam", alpha=0)``, one epoch
  per ``partial_fit`` call (see :class:`SklearnMLP` for why not ``fit(warm_start=True, max_iter=1)``).
* ``floor``: the epoch's matrix products alone, as raw ``torch.addmm``/``torch.mm`` into preallocated buffers: per
  batch of ``b`` images, forward ``x W1ᵀ`` and ``h W2ᵀ``, weight gradients ``gzᵀ h`` and ``ghᵀ x``, and the hidden
  layer's input gradient ``gz W2``; training never needs the first layer's input gradient. That is
  ``2 (2·784·300 + 3·300·10) = 958,800`` FLOP per image, 57.5 GFLOP per epoch of 60,000 images.

The contenders run round-robin, one epoch each per round, the starting one rotating every round, so the
machine's slow and fast spells hit all of them alike. Every contender trains on the same standardized arrays
(nnsee's ``Standardizer("image")``); the PyTorch ones start from the same weights (same seed, same layers).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

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
    fmt_x,
    median,
    rotated,
    timed,
)

HIDDEN = 300
LR = 1e-3
#: target: nnsee's epoch within this many times the floor (the 5 products), by batch size
FLOOR_TARGETS = {128: 1.8, 256: 1.4}
SKLEARN_SPEEDUP_TARGET = 1.4
ACCURACY_TARGET, ACCURACY_EPOCHS = 0.875, 10


def _test_accuracy(model: nn.Module, data: Data) -> float:
    model.eval()
    with torch.no_grad():
        x = torch.from_numpy(data.x_test)
        predicted = torch.cat([model(x[i : i + 4096]).argmax(1) for i in range(0, len(x), 4096)])
    model.train()
    return float((predicted.numpy() == data.y_test).mean())


class NnseeFit:
    """nnsee's ``fit``, one epoch per round, with an empty validation split.

    The public ``fit`` runs all its epochs in one call, and calling it once per epoch would start over (new
    optimizer, new shuffling seed), so this drives ``fit``'s own ``_Trainer`` (an internal) exactly as ``fit``
    sets it up, and each round calls ``_Trainer.train(until=epoch + 1)``: the same per-epoch code ``fit`` runs
    (state snapshot for rollback, shuffle, mini-batch steps, finite check, validation, history), with the final
    scoring (``finish``) deferred to the end. With no ``out`` folder nothing is written to disk. The validation
    split is empty (validation is then a no-op), so all contenders see the same 60k training images and no more.
    ``public_fit`` checks that the public ``fit`` gives the same weights.
    """

    name = "nnsee fit"

    def __init__(self, data: Data, batch_size: int, epochs: int, seed: int) -> None:
        from nnsee.data.imageset import Splits
        from nnsee.data.standardize import Standardizer
        from nnsee.models import build_model
        from nnsee.train import TrainConfig
        from nnsee.train.fit import _Trainer

        class _EpochTrainer(_Trainer):
            def finish(self) -> Any:  # scored once at the end instead of after every round
                return None

        self.data, self.seed = data, seed
        self.splits = Splits(data.train, data.train.subset(np.zeros(0, np.int64)), data.test, {"name": DATASET})
        self.config = TrainConfig(optimizer="adam", epochs=epochs, batch_size=batch_size, lr=LR, l2=0.0,
                                  standardize="image", seed=seed)
        torch.manual_seed(seed)
        model = build_model("mlp", data.train.shape, data.train.n_classes, hidden=[HIDDEN], activation="tanh")
        # What fit() does before its loop (nnsee/train/fit.py).
        standardizer = Standardizer(self.config.standardize).fit(self.splits.train.images)
        torch.manual_seed(self.config.seed)
        self.trainer = _EpochTrainer(model, self.splits, self.config, standardizer, None, False)

    def epoch(self) -> None:
        self.trainer.train(until=self.trainer.epoch + 1)

    def accuracy(self) -> float:
        from nnsee.train.fit import _Trainer

        result = _Trainer.finish(self.trainer)  # fit's own final scoring
        return float(result.metrics["test"]["accuracy"])

    def public_fit(self) -> dict[str, Any]:
        """The same training through the public ``fit`` (run alone, not interleaved) after the interleaved run:
        its epoch seconds, accuracy, and the largest weight difference from the interleaved model (0: bitwise)."""
        from nnsee.models import build_model
        from nnsee.train import fit

        torch.manual_seed(self.seed)
        model = build_model("mlp", self.data.train.shape, self.data.train.n_classes, hidden=[HIDDEN],
                            activation="tanh")
        seconds, result = timed(lambda: fit(model, self.splits, self.config, out=None, progress=False))
        mine, theirs = result.model.state_dict(), self.trainer.model.state_dict()
        diff = max(float((mine[k] - theirs[k]).abs().max()) for k in mine) if mine.keys() == theirs.keys() else None
        return {"wall_seconds": seconds, "epoch_seconds": result.history["seconds"],
                "accuracy": float(result.metrics["test"]["accuracy"]), "max_weight_difference": diff}


class TorchLoop:
    """A plain PyTorch loop: ``torch.optim.Adam`` defaults, ``x[idx]`` gathers, ``zero_grad()``."""

    name = "torch loop"

    def __init__(self, data: Data, batch_size: int, seed: int) -> None:
        torch.manual_seed(seed)  # same layers, same order, same seed: the same initial weights as nnsee's MLP
        self.model = nn.Sequential(nn.Flatten(), nn.Linear(data.n_features, HIDDEN), nn.Tanh(),
                                   nn.Linear(HIDDEN, 10))
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=LR)
        self.x, self.y = torch.from_numpy(data.x_train), torch.from_numpy(data.y_train)
        self.batch_size, self.data = batch_size, data
        self.generator = torch.Generator().manual_seed(seed)

    def epoch(self) -> None:
        n = len(self.x)
        perm = torch.randperm(n, generator=self.generator)
        for start in range(0, n, self.batch_size):
            idx = perm[start : start + self.batch_size]
            xb, yb = self.x[idx], self.y[idx]
            self.optimizer.zero_grad()
            loss = F.cross_entropy(self.model(xb), yb)
            loss.backward()
            self.optimizer.step()

    def accuracy(self) -> float:
        return _test_accuracy(self.model, self.data)


class SklearnMLP:
    """scikit-learn's ``MLPClassifier``, one epoch per ``partial_fit`` call.

    Checked on scikit-learn 1.9: ``fit`` with ``warm_start=True, max_iter=1`` builds a *new* Adam optimizer on
    every call (moments and bias-correction step reset each epoch), and with an integer ``random_state`` it
    reshuffles in the same order every epoch: not what one ``fit(max_iter=E)`` does. ``partial_fit`` keeps the
    optimizer and, with a ``RandomState`` object, draws a fresh shuffle each epoch: it trains like one
    ``fit(max_iter=E)`` (same distribution of shuffles; equal after one epoch bitwise). Each call re-validates
    the input (a finite check over X), a few tens of ms per epoch, included in its time.
    """

    name = "sklearn"

    def __init__(self, data: Data, batch_size: int, seed: int) -> None:
        from sklearn.neural_network import MLPClassifier

        self.data = data
        self.classes = np.arange(int(data.y_train.max()) + 1)
        self.model = MLPClassifier(hidden_layer_sizes=(HIDDEN,), activation="tanh", solver="adam", alpha=0.0,
                                   batch_size=batch_size, learning_rate_init=LR, shuffle=True,
                                   random_state=np.random.RandomState(seed))

    def epoch(self) -> None:
        from sklearn.exceptions import ConvergenceWarning

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            self.model.partial_fit(self.data.x_train, self.data.y_train, classes=self.classes)

    def accuracy(self) -> float:
        return float((self.model.predict(self.data.x_test) == self.data.y_test).mean())


def floor_flops(n: int, d: int, h: int, k: int) -> float:
    """FLOPs of the floor's 5 products over ``n`` images of a d-h-k MLP: ``2 n (2 d h + 3 h k)`` (forward d·h and
    h·k, weight gradients d·h and h·k, the hidden layer's input gradient h·k; 2 FLOPs per multiply-add)."""
    return 2.0 * n * (2 * d * h + 3 * h * k)


class Floor:
    """The epoch's matrix products alone, the 5 that training needs per batch (forward of both Linear layers,
    both weight gradients, the hidden layer's input gradient; not the first layer's input gradient, which no
    training loop computes): 0.96 MFLOP per image, as ``torch.addmm``/``torch.mm`` into preallocated buffers on
    contiguous slices."""

    name = "floor"

    def __init__(self, data: Data, batch_size: int, seed: int) -> None:
        g = torch.Generator().manual_seed(seed)
        d, h, k, b = data.n_features, HIDDEN, 10, batch_size
        self.x = torch.from_numpy(data.x_train)
        self.batch_size = b
        self.w1, self.b1 = torch.randn(h, d, generator=g) * 0.03, torch.zeros(h)
        self.w2, self.b2 = torch.randn(k, h, generator=g) * 0.05, torch.zeros(k)
        self.h, self.z = torch.empty(b, h), torch.empty(b, k)
        self.gz = torch.randn(b, k, generator=g) * 0.01
        self.gh = torch.empty(b, h)
        self.gw1, self.gw2 = torch.empty(h, d), torch.empty(k, h)
        self.flops_per_epoch = floor_flops(len(self.x), d, h, k)

    def epoch(self) -> None:
        n, b = len(self.x), self.batch_size
        for start in range(0, n, b):
            xb = self.x[start : start + b]
            r = len(xb)
            hid, z, gz, gh = self.h[:r], self.z[:r], self.gz[:r], self.gh[:r]
            torch.addmm(self.b1, xb, self.w1.t(), out=hid)  # forward, layer 1
            torch.addmm(self.b2, hid, self.w2.t(), out=z)  # forward, layer 2
            torch.mm(gz, self.w2, out=gh)  # grad input, layer 2 (the hidden layer's)
            torch.mm(gz.t(), hid, out=self.gw2)  # grad weight, layer 2
            torch.mm(gh.t(), xb, out=self.gw1)  # grad weight, layer 1

    def accuracy(self) -> float | None:
        return None


def run_batch(data: Data, batch_size: int, epochs: int, seed: int, gate: IdleGate,
              log: Any) -> tuple[dict[str, Any], NnseeFit]:
    """One interleaved run at ``batch_size``: ``epochs`` rounds, then test accuracy of each trained contender.

    Each round first waits (within ``gate``'s budget) for other processes to leave the CPU, and records how much
    CPU they took during the round, so that disturbed rounds can be left out of the medians.
    """
    contenders = [NnseeFit(data, batch_size, epochs, seed), TorchLoop(data, batch_size, seed),
                  SklearnMLP(data, batch_size, seed), Floor(data, batch_size, seed)]
    seconds: dict[str, list[float]] = {c.name: [] for c in contenders}
    others: list[float | None] = []
    for round_ in range(epochs):
        gate.wait()
        watch = CpuWatch()
        for c in rotated(contenders, round_):
            t, _ = timed(c.epoch)
            seconds[c.name].append(t)
        others.append(watch.others_cores())
        busy = f" [others used {others[-1]:.2f} cores: disturbed]" if round_ not in clean_rounds(others) else ""
        log(f"  batch {batch_size}, epoch {round_ + 1}/{epochs}: "
            + ", ".join(f"{name} {ts[-1]:.3f}s" for name, ts in seconds.items()) + busy)
    out: dict[str, Any] = {"batch_size": batch_size, "epochs": epochs, "seconds": seconds, "others_cores": others,
                           "accuracy": {c.name: c.accuracy() for c in contenders},
                           "floor_gflops": contenders[-1].flops_per_epoch / 1e9}
    return out, contenders[0]


def judge(batch_size: int, epochs: int, med: dict[str, float], accuracy: float, skip: str = "") -> list[Target]:
    """Targets at one batch size from the median epoch seconds of the interleaved run: nnsee's test accuracy,
    its speed-up over scikit-learn (``sklearn / nnsee >= 1.4``) and its time over the floor's
    (``nnsee / floor <=`` FLOOR_TARGETS, 2.0 for a batch size without one)."""
    b = batch_size
    short = f"the accuracy target is for {ACCURACY_EPOCHS} epochs" if epochs < ACCURACY_EPOCHS else ""
    return [
        Target(f"batch {b}: nnsee test accuracy after {epochs} epochs", accuracy, ">=", ACCURACY_TARGET, ".4f",
               skip=skip or short),
        Target(f"batch {b}: nnsee speed-up over sklearn (median epoch)", med["sklearn"] / med["nnsee fit"], ">=",
               SKLEARN_SPEEDUP_TARGET, skip=skip),
        Target(f"batch {b}: nnsee epoch / floor (the 5 products training needs)", med["nnsee fit"] / med["floor"],
               "<=", FLOOR_TARGETS.get(b, 2.0), skip=skip),
    ]


def run(data: Data, batch_sizes: list[int], epochs: int, seed: int, quick: bool, check_public: bool,
        gate: IdleGate, log: Any) -> Section:
    results = []
    public: dict[int, dict[str, Any]] = {}
    for b in batch_sizes:
        result, nnsee = run_batch(data, b, epochs, seed, gate, log)
        results.append(result)
        if check_public:
            log(f"  batch {b}: the public fit() alone, {epochs} epochs")
            public[b] = nnsee.public_fit()
        del nnsee

    names = ["nnsee fit", "torch loop", "sklearn", "floor"]
    section = Section(
        f"MLP 784-{HIDDEN}-10 tanh, Adam lr {LR:g}: seconds per epoch ({data.note}; {epochs} interleaved epochs)",
        ["contender", "batch", "median s", "min s", "x floor", f"test acc @{epochs}"],
    )
    quick_skip = "--quick: subset and few epochs, not judged" if quick else ""
    for res in results:
        b, acc = res["batch_size"], res["accuracy"]
        keep = clean_rounds(res["others_cores"])
        if len(keep) < max(3, epochs // 2):  # too few quiet rounds: use them all, and say so
            section.notes.append(f"batch {b}: only {len(keep)} of {epochs} rounds were undisturbed by other "
                                 "processes; the medians use all rounds")
            keep = list(range(epochs))
        elif len(keep) < epochs:
            section.notes.append(f"batch {b}: {epochs - len(keep)} of {epochs} rounds disturbed by other processes "
                                 "were left out of the medians")
        secs = {n: [res["seconds"][n][i] for i in keep] for n in names}
        med = {n: median(secs[n]) for n in names}
        for n in names:
            section.rows.append([n, str(b), fmt_s(med[n]), fmt_s(min(secs[n])), fmt_x(med[n] / med["floor"]),
                                 fmt_acc(acc[n])])
        speedup = med["sklearn"] / med["nnsee fit"]
        section.notes.append(
            f"batch {b}: nnsee is {speedup:.2f}x faster than sklearn, {med['torch loop'] / med['nnsee fit']:.2f}x "
            f"faster than the plain torch loop; floor {res['floor_gflops']:.2f} GFLOP/epoch at "
            f"{res['floor_gflops'] / med['floor']:.0f} GFLOP/s"
        )
        section.targets += judge(b, epochs, med, acc["nnsee fit"], quick_skip)
        res["median_seconds"] = med
        if b in public:
            p = public[b]
            section.notes.append(
                f"batch {b}: public fit() run alone: median epoch {median(p['epoch_seconds']):.3f}s (fit's own "
                f"history), test acc {p['accuracy']:.4f}, max |weight difference| from the interleaved run: "
                f"{p['max_weight_difference']:.3g}"
            )
            res["public_fit"] = p
    section.notes += [
        "nnsee fit: fit's per-epoch code via its _Trainer (rollback snapshot, shuffle, steps, finite check, "
        "validation on an empty split, history); final scoring and data standardization not timed",
        "torch loop: plain torch.optim.Adam (for-loop impl.), x[idx] batches, zero_grad(); "
        "sklearn: one partial_fit per epoch (incl. its input validation)",
        "floor: the 5 products training needs per batch (forward and weight gradient of both layers, the hidden "
        "layer's input gradient) into preallocated buffers: 2 n (2*784*300 + 3*300*10) FLOP, 57.5 GFLOP for 60k",
    ]
    section.raw = {"runs": results}
    return section
