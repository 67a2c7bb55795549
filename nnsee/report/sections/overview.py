"""Overview: what was trained on what, how well, sample images per class, learning curves, confusion matrix."""

from __future__ import annotations

from typing import Any

import numpy as np

from nnsee.render import learning_curves_svg
from nnsee.report.sections.common import ReportInput, images_grid_uri, upscale_for
from nnsee.train.evaluate import evaluate


def overview(inp: ReportInput, samples_per_class: int = 8) -> dict[str, Any]:
    run, splits = inp.run, inp.splits
    config = run.config
    test = run.metrics.get("test") or evaluate(run.model, splits.test, run.standardizer)
    spec = run.meta.get("model") or {"name": "custom module"}
    model = spec["name"] + (
        f" ({', '.join(str(h) for h in spec['hidden'])} hidden, {spec['activation']})" if spec.get("hidden") else ""
    )
    facts = [
        ("model", model),
        ("data", str(run.data_spec.get("spec", run.data_spec.get("source", "?")))),
        ("images", f"{'×'.join(str(s) for s in inp.shape)}; train {len(splits.train)}, "
                   f"validation {len(splits.val)}, test {len(splits.test)}"),
        ("standardization", run.standardizer.describe()),
        ("training", f"{config.get('optimizer')} lr {config.get('lr'):g}, L2 λ = {config.get('l2'):g}, "
                     f"{run.epoch} epochs, batch {config.get('batch_size')} ({run.meta.get('status', '?')})"),
    ]
    samples = []
    upscale = max(1, upscale_for(inp.shape, 40))
    for k, name in enumerate(inp.class_names):
        index = np.flatnonzero(splits.train.labels == k)[:samples_per_class]
        if len(index):
            uri = images_grid_uri(splits.train.images[index], samples_per_class, upscale)
            samples.append({"name": name, "uri": uri})
    history = run.history
    curves = learning_curves_svg(history) if history.get("epoch") else None
    matrix = np.asarray(test["confusion_matrix"]) if test.get("n") else None
    return {
        "facts": facts,
        "samples": samples,
        "curves": curves,
        "test": test,
        "val": run.metrics.get("val"),
        "confusion": _confusion_rows(matrix, inp.class_names) if matrix is not None else None,
    }


def _confusion_rows(matrix: np.ndarray, names: list[str]) -> list[dict[str, Any]]:
    """Rows of the confusion matrix with a shade per cell: share of the row's images (0..1)."""
    rows = []
    for i, name in enumerate(names):
        total = max(int(matrix[i].sum()), 1)
        cells = [{"count": int(v), "share": float(v) / total, "diagonal": i == j} for j, v in enumerate(matrix[i])]
        rows.append({"name": name, "cells": cells, "accuracy": float(matrix[i, i]) / total})
    return rows
