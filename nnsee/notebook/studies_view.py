"""The studies drawn small: the overfitting study (per run its scores, its loss curves, the first hidden units'
weights) and the standardization study (per mode its accuracies and its class templates)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from nnsee.notebook.html import box, names_for, number, percent, table, text, tile, tiles, upscale_for
from nnsee.render import sparkline_svg, symmetric_scale, weight_tile

if TYPE_CHECKING:
    from nnsee.studies.overfit import OverfitStudy
    from nnsee.studies.standardization import StandardizationStudy

#: Weight images drawn per run or mode.
PER_ROW = 8


def overfit_html(study: OverfitStudy, units: int = PER_ROW, size: int = 40) -> str:
    """One row per run: train / validation / test accuracy, the gap, the epoch of the lowest validation loss, the
    weights' high-frequency share, train (blue) and validation (red) loss per epoch, and ``units`` incoming weight
    images on the run's own symmetric scale (L2 shrinks the weights; the question is their shape)."""
    rows = []
    for r in study.runs:
        w = r.incoming_weights[:units]
        scale = symmetric_scale(w)
        up = upscale_for(w.shape[-1], size)
        strip = tiles(tile(weight_tile(one, scale, up), f"{r.name} unit {j}", "") for j, one in enumerate(w))
        curve = sparkline_svg({"train loss": r.history["train_loss"], "validation loss": r.history["val_loss"]})
        rows.append((text(r.name), str(r.n_train), percent(r.train_accuracy),
                     f'<span data-metric="val-accuracy">{percent(r.val_accuracy)}</span>', percent(r.test_accuracy),
                     percent(r.gap), str(r.min_val_loss_epoch or "—"),
                     number(r.noisiness.get("high_frequency_share_mean")), curve, f"{strip}±{number(scale)}"))
    header = ["run", "images", "train", "validation", "test", "gap", "best val. epoch", "high-freq. share",
              "loss: train, validation", "first hidden units' weights"]
    return box("Overfitting study", table(header, rows), kind="overfit")


def standardization_html(study: StandardizationStudy, size: int = 40) -> str:
    """One row per standardization mode: validation and test accuracy, then the class templates on the mode's own
    symmetric scale."""
    rows = []
    for m in study.results:
        names = names_for(study.class_names or None, len(m.templates))
        scale = symmetric_scale(m.templates)
        up = upscale_for(m.templates.shape[-1], size)
        strip = tiles(tile(weight_tile(t, scale, up), f"{m.mode} template of class {k}", text(name))
                      for k, (t, name) in enumerate(zip(m.templates, names, strict=True)))
        rows.append((text(m.mode), f'<span data-metric="val-accuracy">{percent(m.val_accuracy)}</span>',
                     f'<span data-metric="test-accuracy">{percent(m.test_accuracy)}</span>',
                     number(float(np.median(m.norms)) if len(m.norms) else None), f"{strip}±{number(scale)}"))
    header = ["mode", "validation", "test", "median ‖x′‖", "templates"]
    return box("Standardization study", table(header, rows), kind="standardization")
