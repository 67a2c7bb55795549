"""What ``nnsee report RUN --analysis DIR`` takes from an analysis instead of recomputing it: the test scores
(accuracy, confusion matrix, per-class accuracy, loss) and the top-k images per channel, once the analysis is shown
to be of this run (same weights) and of the report's own split (same data fingerprint)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from nnsee.analysis.accumulators import differences
from nnsee.analysis.identity import data_fingerprint, weights_sha256
from nnsee.analysis.result import Analysis
from nnsee.data.imageset import ImageSet
from nnsee.errors import RunError

if TYPE_CHECKING:
    from nnsee.methods.dataset_views.top_images import TopK
    from nnsee.train.run import Run

#: Rows of probabilities read at a time for the loss.
CHUNK = 65536


def check_run(analysis: Analysis, run: Run) -> None:
    """Refuse (one line) an analysis made with other weights than ``run``'s."""
    if analysis.summary["run"].get("weights") != weights_sha256(run.model):
        raise RunError(f"the analysis in {analysis.path} was made with other weights than the run {run.path}; "
                       f"analyze this run: nnsee analyze {run.path} --out DIR")


def same_data(analysis: Analysis, data: ImageSet) -> list[str]:
    """What differs between the analysis' data and ``data`` ([] when it is the same set)."""
    mine = data_fingerprint(data)
    theirs = {key: analysis.summary["data"].get(key) for key in mine}
    return differences(theirs, mine, "data.")


def scores(analysis: Analysis) -> dict[str, Any]:
    """``evaluate.scores``'s fields from the analysis: accuracy, loss (mean -log p of the true class over the
    analyzed images, from the stored float32 probabilities), per-class accuracy, confusion matrix."""
    matrix = np.asarray(analysis.summary["confusion_matrix"], np.int64)
    names, n = analysis.summary["class_names"], analysis.n
    labels, predicted = analysis.labels, analysis.predictions
    probabilities, total = analysis.probabilities(), 0.0
    for start in range(0, len(labels), CHUNK):
        rows = slice(start, start + CHUNK)
        seen = predicted[rows] >= 0
        p = np.asarray(probabilities[rows], np.float64)[seen, labels[rows][seen]]
        total += float(-np.log(np.maximum(p, np.finfo(np.float64).tiny)).sum())
    support = matrix.sum(axis=1)
    return {"n": n, "accuracy": analysis.accuracy, "loss": total / n if n else None,
            "per_class_accuracy": {name: (float(matrix[i, i] / support[i]) if support[i] else None)
                                   for i, name in enumerate(names)},
            "confusion_matrix": matrix.tolist(), "from_analysis": str(analysis.path)}


def top_images(analysis: Analysis, layers: Sequence[str], k: int = 9) -> dict[str, TopK] | None:
    """The analysis' top-``k`` of ``layers`` as :class:`~nnsee.methods.dataset_views.top_images.TopK` (what
    ``top_images_per_layer`` returns), or None when it lacks a layer or kept fewer than ``k``."""
    from nnsee.methods.dataset_views.top_images import TopK

    stored = analysis.summary["layers"]
    if any(layer not in stored or stored[layer]["k"] < min(k, analysis.n) for layer in layers):
        return None
    out = {}
    for layer in layers:
        top = analysis.top(layer)
        out[layer] = TopK(layer, top["values"][:, :k], top["index"][:, :k], top["position"][:, :k],
                          analysis.n, tuple(stored[layer]["map_shape"]))
    return out
