"""``nnsee demo``: real built-in data → trained networks → reports, in about two minutes on 2 CPU cores.

On the built-in digits it trains softmax regression and a 300-unit MLP (weights kept at a few epochs to show
their evolution), writes each run's report, and runs a small overfitting study; when Fashion-MNIST is installed it
trains the same two models on it. A top page links everything. A front end: it uses both the studies and the
report, so it lives above them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from nnsee.data import load_data
from nnsee.data.imageset import Splits
from nnsee.errors import DataError
from nnsee.models import build_model
from nnsee.render import write_atomic
from nnsee.report import build_report
from nnsee.train import TrainConfig, fit

SNAPSHOTS = [0, 1, 2, 5, 10, 20, 30]


@dataclass
class DemoEntry:
    title: str
    accuracy: float | None
    report: Path


def _train_and_report(splits: Splits, name: str, out: Path, config: TrainConfig, **options: object) -> DemoEntry:
    torch.manual_seed(config.seed)
    model = build_model(name, splits.shape, splits.train.n_classes, **options)
    result = fit(model, splits, config, out, progress=False)
    return DemoEntry(str(out.name), result.metrics["test"]["accuracy"], build_report(out, splits=splits))


def run_demo(out: str | Path, *, fashion: bool | None = None, say: Callable[[str], None] = print) -> list[DemoEntry]:
    """Train, study and report into ``out``; ``fashion=None`` includes Fashion-MNIST when it is installed."""
    from nnsee.report.standardization_study import build_standardization_report
    from nnsee.report.study import build_study_report
    from nnsee.studies.overfit import overfit_study
    from nnsee.studies.standardization import standardization_study

    out = Path(out)
    started = time.perf_counter()
    entries: list[DemoEntry] = []
    digits = load_data("digits", seed=0)
    say(f"digits: {len(digits.train)} train / {len(digits.val)} validation / {len(digits.test)} test images")
    for name, options, l2 in (("softmax", {}, 1e-4), ("mlp", {"hidden": [300], "activation": "tanh"}, 1e-4)):
        config = TrainConfig(optimizer="adam", epochs=30, l2=l2, snapshots=SNAPSHOTS)
        entries.append(_train_and_report(digits, name, out / f"digits-{name}", config, **options))
        say(f"  {name:8s} test accuracy {entries[-1].accuracy:.4f}  ({time.perf_counter() - started:.0f} s)")
    say("overfitting study on digits (few vs more images per class, with and without L2)...")
    study = overfit_study(digits, out=out / "overfit-study" / "runs")
    index = build_study_report(study, out / "overfit-study")
    entries.append(DemoEntry("overfit-study", None, index))
    for row in study.summary():
        say(f"  {row['name']:12s} train {row['train_accuracy']:.3f} val {row['val_accuracy']:.3f} "
            f"val loss min {row['min_val_loss']:.3f} (epoch {row['min_val_loss_epoch']}) last {row['val_loss']:.3f} "
            f"high-frequency share {row['noisiness_high_frequency_share_mean']:.3f}")
    say("standardization study on digits (softmax under none / image / pixel)...")
    modes = standardization_study(digits)
    entries.append(DemoEntry("standardization-study", None,
                             build_standardization_report(modes, out / "standardization-study")))
    say("  " + ", ".join(f"{r.mode} test {r.test_accuracy:.3f}" for r in modes.results))
    if fashion is not False:
        try:
            fmnist = load_data("fashion-mnist", seed=0, download=bool(fashion))
        except DataError as exc:
            if fashion:
                raise
            say(f"Fashion-MNIST skipped ({str(exc).splitlines()[0][:100]}...)")
        else:
            say(f"fashion-mnist: {len(fmnist.train)} train / {len(fmnist.test)} test images")
            for name, options in (("softmax", {}), ("mlp", {"hidden": [300], "activation": "tanh"})):
                config = TrainConfig(optimizer="adam", epochs=10, batch_size=128, l2=1e-5, snapshots=[0, 1, 5, 10])
                entries.append(_train_and_report(fmnist, name, out / f"fashion-{name}", config, **options))
                say(f"  {name:8s} test accuracy {entries[-1].accuracy:.4f}  ({time.perf_counter() - started:.0f} s)")
    write_atomic(out / "index.html", _index_html(entries, out).encode("utf-8"))
    return entries


def _index_html(entries: list[DemoEntry], out: Path) -> str:
    from html import escape

    rows = "".join(
        f'<li><a href="{escape(e.report.relative_to(out).as_posix())}">{escape(e.title)}</a>'
        + (f" — test accuracy {100 * e.accuracy:.1f}%" if e.accuracy is not None else "") + "</li>"
        for e in entries
    )
    return ("<!doctype html><meta charset='utf-8'><title>nnsee demo</title>"
            "<body style='font:15px system-ui;max-width:800px;margin:24px auto'>"
            f"<h1>nnsee demo: how neural networks see</h1><ul>{rows}</ul></body>")
