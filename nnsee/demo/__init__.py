"""``nnsee demo``: real built-in data → trained networks → reports, a landing page and a guided tour.

On the built-in digits it trains softmax regression, a 300-unit MLP (weights kept at a few epochs to show their
evolution) and a small CNN, writes each run's report, and runs an overfitting study and a standardization study;
when Fashion-MNIST is installed it trains softmax and the MLP on it too. ``index.html`` (:mod:`nnsee.demo.landing`)
shows one card per report in the lecture's order (:data:`nnsee.lessons.OUTLINE`); ``tour.html``
(:mod:`nnsee.demo.tour`) walks the lecture with this demo's own figures and numbers. A front end: it uses the
studies, the report and the lessons, so it lives above them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nnsee.data import load_data
from nnsee.data.imageset import Splits
from nnsee.errors import DataError
from nnsee.models import build_model
from nnsee.report import build_report
from nnsee.train import TrainConfig, fit


@dataclass
class DemoEntry:
    """One report of the demo: its folder name (``title``, an OUTLINE ``run``), test accuracy when it has one, the
    report's index page, the seconds its report took to build, and what the landing page and tour need (``data``:
    the loaded :class:`~nnsee.train.Run` and its splits, or the study's result)."""

    title: str
    accuracy: float | None
    report: Path
    seconds: float = 0.0
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DemoSize:
    """What the demo trains: ``real`` is ``nnsee demo``; ``test`` a few-second stand-in with the same shape of
    output (tiny models, 1-2 epochs) for the tests."""

    epochs: int = 30
    hidden: int = 300
    cnn_channels: tuple[int, ...] = (16, 32)
    cnn_epochs: int = 8
    cnn_snapshots: tuple[int, ...] = (0, 1, 2, 5, 8)
    snapshots: tuple[int, ...] = (0, 1, 2, 5, 10, 20, 30)
    study: dict[str, Any] = field(default_factory=dict)
    standardization_epochs: int = 15
    fashion_epochs: int = 10
    subset: tuple[int, int, int] | None = None  # the first (train, val, test) images of each data set; None: all


SIZES = {
    "real": DemoSize(),
    "test": DemoSize(epochs=2, hidden=24, cnn_channels=(4, 8), cnn_epochs=1, cnn_snapshots=(0, 1),
                     snapshots=(0, 1, 2), study={"per_class": (10, 30), "l2_values": (0.0, 0.3), "hidden": 12,
                                                 "epochs": 3},
                     standardization_epochs=2, fashion_epochs=1, subset=(400, 100, 100)),
}


def _cut(splits: Splits, subset: tuple[int, int, int] | None) -> Splits:
    """The first ``subset`` (train, val, test) images of ``splits`` (all of them when None)."""
    if subset is None:
        return splits
    parts = [part.subset(np.arange(min(n, len(part)))) for part, n in
             zip((splits.train, splits.val, splits.test), subset, strict=True)]
    return Splits(*parts, spec=splits.spec)


def _train_and_report(splits: Splits, name: str, out: Path, config: TrainConfig, **options: object) -> DemoEntry:
    from nnsee.train.run import load_run

    torch.manual_seed(config.seed)
    model = build_model(name, splits.shape, splits.train.n_classes, **options)
    result = fit(model, splits, config, out, progress=False)
    started = time.perf_counter()
    report = build_report(out, splits=splits)
    return DemoEntry(str(out.name), result.metrics["test"]["accuracy"], report, time.perf_counter() - started,
                     {"run": load_run(out), "splits": splits})


def run_demo(out: str | Path, *, fashion: bool | None = None, say: Callable[[str], None] = print,
             size: str = "real") -> list[DemoEntry]:
    """Train, study and report into ``out``, then write ``out/index.html`` and ``out/tour.html``;
    ``fashion=None`` includes Fashion-MNIST when it is installed. ``size``: ``real`` (``nnsee demo``) or ``test``
    (:data:`SIZES`)."""
    from nnsee.demo.landing import write_landing
    from nnsee.demo.tour import write_tour
    from nnsee.report.standardization_study import build_standardization_report
    from nnsee.report.study import build_study_report
    from nnsee.studies.overfit import overfit_study
    from nnsee.studies.standardization import standardization_study

    s = SIZES[size]
    out = Path(out)
    started = time.perf_counter()
    entries: list[DemoEntry] = []
    digits = _cut(load_data("digits", seed=0), s.subset)
    say(f"digits: {len(digits.train)} train / {len(digits.val)} validation / {len(digits.test)} test images")
    models: list[tuple[str, dict[str, Any], TrainConfig]] = [
        ("softmax", {}, TrainConfig(optimizer="adam", epochs=s.epochs, l2=1e-4, snapshots=list(s.snapshots))),
        ("mlp", {"hidden": [s.hidden], "activation": "tanh"},
         TrainConfig(optimizer="adam", epochs=s.epochs, l2=1e-4, snapshots=list(s.snapshots))),
        ("cnn", {"channels": list(s.cnn_channels), "kernel": 5},
         TrainConfig(optimizer="adam", epochs=s.cnn_epochs, batch_size=32, snapshots=list(s.cnn_snapshots))),
    ]
    for name, options, config in models:
        entries.append(_train_and_report(digits, name, out / f"digits-{name}", config, **options))
        say(f"  {name:8s} test accuracy {entries[-1].accuracy:.4f}  ({time.perf_counter() - started:.0f} s; "
            f"report {entries[-1].seconds:.1f} s)")
    say("overfitting study on digits (few vs more images per class, with and without L2)...")
    study = overfit_study(digits, out=out / "overfit-study" / "runs", **s.study)
    t0 = time.perf_counter()
    index = build_study_report(study, out / "overfit-study")
    entries.append(DemoEntry("overfit-study", None, index, time.perf_counter() - t0, {"study": study}))
    for row in study.summary():
        say(f"  {row['name']:12s} train {row['train_accuracy']:.3f} val {row['val_accuracy']:.3f} "
            f"val loss min {row['min_val_loss']:.3f} (epoch {row['min_val_loss_epoch']}) last {row['val_loss']:.3f} "
            f"high-frequency share {row['noisiness_high_frequency_share_mean']:.3f}")
    say("standardization study on digits (softmax under none / image / pixel)...")
    modes = standardization_study(digits, epochs=s.standardization_epochs)
    t0 = time.perf_counter()
    index = build_standardization_report(modes, out / "standardization-study")
    entries.append(DemoEntry("standardization-study", None, index, time.perf_counter() - t0, {"study": modes}))
    say("  " + ", ".join(f"{r.mode} test {r.test_accuracy:.3f}" for r in modes.results))
    if fashion is not False:
        try:
            fmnist = _cut(load_data("fashion-mnist", seed=0, download=bool(fashion)), s.subset)
        except DataError as exc:
            if fashion:
                raise
            say(f"Fashion-MNIST skipped ({str(exc).splitlines()[0][:100]}...)")
        else:
            say(f"fashion-mnist: {len(fmnist.train)} train / {len(fmnist.test)} test images")
            for name, options in (("softmax", {}), ("mlp", {"hidden": [s.hidden], "activation": "tanh"})):
                config = TrainConfig(optimizer="adam", epochs=s.fashion_epochs, batch_size=128, l2=1e-5,
                                     snapshots=[e for e in (0, 1, 5, 10) if e <= s.fashion_epochs])
                entries.append(_train_and_report(fmnist, name, out / f"fashion-{name}", config, **options))
                say(f"  {name:8s} test accuracy {entries[-1].accuracy:.4f}  ({time.perf_counter() - started:.0f} s; "
                    f"report {entries[-1].seconds:.1f} s)")
    t0 = time.perf_counter()
    write_tour(entries, out)
    write_landing(entries, out)
    say(f"landing page and guided tour: {time.perf_counter() - t0:.1f} s; all: {time.perf_counter() - started:.0f} s")
    return entries
