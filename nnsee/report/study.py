"""The overfitting study's own page: learning curves and weight images side by side, noisiness measured."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

import nnsee
from nnsee.render import (
    colorbar,
    data_uri,
    grid,
    learning_curves_svg,
    save_png,
    symmetric_scale,
    weight_tile,
    write_atomic,
)
from nnsee.report.build import environment, report_folder
from nnsee.report.sections.common import upscale_for

if TYPE_CHECKING:
    from nnsee.studies.overfit import OverfitStudy


def build_study_report(study: OverfitStudy, out: str | Path, n_units: int = 16) -> Path:
    """Write ``out/index.html`` (+ ``weights.png``) for an
    :class:`~nnsee.studies.OverfitStudy`; it only renders the study, computed in :mod:`nnsee.studies`."""
    out = Path(out)
    report_folder(out, ["index.html", "weights.png", "study.json"])
    runs, strips = [], []
    for r in study.runs:
        weights = np.asarray(r.incoming_weights)[:n_units]
        scale = symmetric_scale(weights)  # per run: L2 shrinks weights, and the question is their shape
        upscale = upscale_for(weights.shape[1:], 56)
        tiles = [weight_tile(w, scale, upscale) for w in weights]
        strip = grid(tiles, ncols=8, title=f"{r.per_class}/class, L2 {r.l2:g}: high-frequency share "
                                            f"{r.noisiness['high_frequency_share_mean']:.3f}")
        strips.append(strip)
        loss, accuracy = learning_curves_svg(r.history)
        runs.append({
            "name": r.name, "per_class": r.per_class, "n_train": r.n_train, "l2": r.l2,
            "train": r.train_accuracy, "val": r.val_accuracy, "test": r.test_accuracy, "gap": r.gap,
            "hf": r.noisiness["high_frequency_share_mean"], "tv": r.noisiness["tv_ratio_mean"],
            "best_epoch": r.min_val_loss_epoch, "epochs": len(r.history["epoch"]),
            "loss_svg": loss, "accuracy_svg": accuracy,
            "weights": data_uri(strip), "scale": scale, "colorbar": data_uri(colorbar(scale)),
            "run_dir": str(r.run_dir) if r.run_dir else None,
        })
    save_png(grid(strips, ncols=1, pad=6), out / "weights.png")
    html = environment().get_template("study.html.j2").render(
        runs=runs, settings=study.settings, version=nnsee.__version__, class_names=study.class_names)
    write_atomic(out / "index.html", html.encode("utf-8"))
    study.to_json(out / "study.json")
    return out / "index.html"
