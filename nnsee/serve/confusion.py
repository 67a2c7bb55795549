"""The live page's confusion drill-down: the test confusion matrix of a run, and a cell's test images with maps.

``GET /api/runs/{name}/confusion``: the matrix (rows: true class, columns: predicted) when the run has at most
:data:`MAX_CLASSES` classes, else its top confusions; ``GET /api/runs/{name}/confusion/{i}/{j}``: the first
:data:`~nnsee.methods.confusion_cells.CAP` test images (in data-set order) of true class ``i`` predicted as ``j``,
each as a data: URI beside its map for the predicted class (:func:`~nnsee.methods.confusion_cells.predicted_maps`),
with the cell's full count. The test predictions are computed once per run (in the work pool) and kept; a run whose
data set is gone, or a class that does not exist, is a 404 with one line.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
from fastapi import FastAPI, HTTPException

from nnsee.errors import DataError
from nnsee.methods.base import softmax
from nnsee.methods.confusion_cells import CAP, ConfusionCells, confusion_cells, predicted_maps, top_confusions
from nnsee.render import data_uri, image_tile, symmetric_scale, weight_tile
from nnsee.serve.pool import WorkPool
from nnsee.serve.views import LoadedRun

MAX_CLASSES = 30  # a matrix up to this many classes; above, the top confusions
TOP = 30


@dataclass(frozen=True)
class DrillDown:
    """A run's test set as the drill-down needs it: every cell's first :data:`CAP` members and the predictions."""

    cells: ConfusionCells
    predicted: np.ndarray  # (N,)
    probability: np.ndarray  # (N,) the probability of the predicted class


def drill_down(loaded: LoadedRun) -> DrillDown:
    """One forward pass over the run's test images (standardized chunk by chunk, as the report does)."""
    from nnsee.train.evaluate import predict_logits

    test = loaded.splits().test
    with loaded.lock:
        logits = predict_logits(loaded.run.model, test.images, transform=loaded.run.standardize)
    predicted = logits.argmax(1) if len(logits) else np.zeros(0, np.int64)
    probability = softmax(logits).max(1) if len(logits) else np.zeros(0)
    return DrillDown(confusion_cells(predicted, test.labels, len(loaded.run.class_names)), predicted, probability)


def matrix_view(loaded: LoadedRun, tc: DrillDown) -> dict[str, Any]:
    """The matrix (at most :data:`MAX_CLASSES` classes) or the :data:`TOP` largest off-diagonal cells."""
    m = tc.cells.matrix
    full = len(m) <= MAX_CLASSES
    return {"run": loaded.name, "class_names": loaded.run.class_names, "n": int(m.sum()), "cap": CAP,
            "matrix": m.tolist() if full else None,
            "top": [{"i": i, "j": j, "count": int(m[i, j])} for i, j in top_confusions(m, TOP)]}


def cell_view(loaded: LoadedRun, tc: DrillDown, i: int, j: int) -> dict[str, Any]:
    """The cell's shown images (data: URIs), their maps on one shared scale, probabilities and test indices."""
    index = tc.cells.index.get((i, j), np.zeros(0, np.int64))
    names = loaded.run.class_names
    out: dict[str, Any] = {"run": loaded.name, "i": i, "j": j, "true": names[i], "predicted": names[j],
                           "count": tc.cells.count(i, j), "cap": CAP, "kind": None, "scale": 0.0, "images": []}
    if not len(index):
        return out
    test = loaded.splits().test
    with loaded.lock:
        maps = predicted_maps(loaded.run.model, loaded.run.standardize(test.images[index]), tc.predicted[index],
                              loaded.shape, batch=max(1, 64 * 784 // int(np.prod(loaded.shape))))  # large: 1 a batch
    scale = symmetric_scale(maps.maps)
    up = loaded.upscale
    raw = np.asarray(test.images[index], dtype=np.float32)
    out.update(kind=maps.kind, scale=scale, images=[
        {"index": int(t), "p": float(tc.probability[t]), "image": data_uri(image_tile(np.clip(raw[n], 0, 1), up)),
         "map": data_uri(weight_tile(maps.maps[n], scale, up)),
         "unit": int(maps.units[n]) if maps.units is not None else None}
        for n, t in enumerate(index)])
    return out


def add_routes(app: FastAPI, get: Any, jobs: WorkPool) -> None:
    """Register the drill-down's two routes (see the module doc)."""
    from nnsee.serve.app import in_pool

    kept: dict[str, DrillDown] = {}
    locks: dict[str, threading.Lock] = {}
    guard = threading.Lock()

    def cells_of(loaded: LoadedRun) -> DrillDown:
        with guard:
            lock = locks.setdefault(loaded.name, threading.Lock())
        with lock:  # computed once, even when two requests ask at the same time
            if loaded.name not in kept:
                try:
                    kept[loaded.name] = drill_down(loaded)
                except DataError as e:
                    raise HTTPException(404, f"run {loaded.name!r}: its test images cannot be read ({e})") from None
            return kept[loaded.name]

    @app.get("/api/runs/{name}/confusion")
    async def confusion(name: str) -> dict:
        loaded = get(name)
        return await in_pool(jobs, lambda: matrix_view(loaded, cells_of(loaded)))

    @app.get("/api/runs/{name}/confusion/{i}/{j}")
    async def confusion_cell(name: str, i: int, j: int) -> dict:
        loaded = get(name)
        k = len(loaded.run.class_names)
        for what, c in (("true", i), ("predicted", j)):
            if not 0 <= c < k:
                raise HTTPException(404, f"{what} class {c} does not exist: run {name!r} has classes 0..{k - 1}")
        return await in_pool(jobs, lambda: cell_view(loaded, cells_of(loaded), i, j))
