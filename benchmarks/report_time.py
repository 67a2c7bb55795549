"""Report generation vs training: ``nnsee report`` for the 300-unit MLP on full Fashion-MNIST must take no longer
than three training epochs of the same run (issue 15's bound), timed side by side (rounds alternate one epoch and one
report)."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import CpuWatch, IdleGate, Section, Target, clean_rounds, median


def run(rounds: int, seed: int, quick: bool, gate: IdleGate, log: Any) -> Section:
    import torch

    from nnsee.data import load_data
    from nnsee.models import build_model
    from nnsee.report import build_report
    from nnsee.train import TrainConfig, fit, resume

    splits = load_data("fashion-mnist", seed=seed)
    if quick:
        splits.train = splits.train.subset(slice(0, 6000))
    with tempfile.TemporaryDirectory(prefix="nnsee-bench-") as tmp:
        out = Path(tmp) / "fmnist-mlp"
        torch.manual_seed(seed)
        model = build_model("mlp", splits.shape, splits.train.n_classes, hidden=[300], activation="tanh")
        fit(model, splits, TrainConfig(epochs=1, batch_size=128, seed=seed), out, progress=False)
        epochs, reports, report_total, others = [], [], [], []
        for r in range(rounds):
            gate.wait()
            watch = CpuWatch()
            result = resume(out, epochs=1, data=splits, progress=False)
            epochs.append(result.history["seconds"][-1])
            started = time.perf_counter()
            build_report(out, splits=splits)  # the data already in memory, as after training
            reports.append(time.perf_counter() - started)
            started = time.perf_counter()
            build_report(out)  # as `nnsee report RUN` does it: reload the data from the run's spec
            report_total.append(time.perf_counter() - started)
            others.append(watch.others_cores())
            log(f"  round {r + 1}/{rounds}: epoch {epochs[-1]:.3f}s, report {reports[-1]:.3f}s, "
                f"report with data loading {report_total[-1]:.3f}s")
    keep = clean_rounds(others) or list(range(rounds))
    epoch, report, total = (median([v[i] for i in keep]) for v in (epochs, reports, report_total))
    section = Section(
        f"Report of the 300-unit MLP on {'6,000 Fashion-MNIST images (--quick)' if quick else 'full Fashion-MNIST'}"
        f" vs its training epochs (median of {len(keep)} alternating rounds)",
        ["what", "median s", "x three epochs"],
        rows=[["training epoch (fit history)", f"{epoch:.3f}", f"{epoch / (3 * epoch):.2f}x"],
              ["report, data in memory", f"{report:.3f}", f"{report / (3 * epoch):.2f}x"],
              ["nnsee report RUN (reloads data)", f"{total:.3f}", f"{total / (3 * epoch):.2f}x"]],
        notes=["the report holds all 300 unit cards (incoming weights, outgoing bars, top-9 of 54,000 training "
               "images, ablation on 6,000 validation images), templates, gallery, standardization, learning curves"],
    )
    section.targets.append(Target("report time / three training epochs", report / (3 * epoch), "<=", 1.0,
                                  skip="--quick" if quick else ""))
    section.raw = {"epoch_seconds": epochs, "report_seconds": reports, "report_with_load_seconds": report_total}
    return section
