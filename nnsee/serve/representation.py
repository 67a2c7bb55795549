"""The live page's representation map and nearest training images.

``GET /api/runs/{name}/representation?method=pca|tsne``: a stratified sample of up to 2,000 test images
(:func:`~nnsee.methods.representation.stratified_sample`) at the input of the model's last Linear layer, projected
to 2-D; PCA at every weight snapshot (at most 12, evenly spaced) aligned to the final weights, t-SNE of the final
weights only (seconds per frame). The answer holds each frame's points, the labels, and the images as one sprite
(a data: URI; image ``i`` is the tile at row ``i // columns``, column ``i % columns``). Computed once per run and
method, in the work pool (the model's lock held only while the features are computed).

``POST /api/neighbours?run=NAME`` with an image (as ``/api/explain``): its :data:`K` nearest training images by
Euclidean distance between the same features, over the whole training split. The training features are computed
once per run and kept when they fit in :data:`BANK_BYTES`; otherwise the split is streamed at every request.
A run whose data set is gone is a 404 with one line.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
from fastapi import FastAPI, HTTPException, Request

from nnsee.errors import DataError, not_one_of
from nnsee.methods.representation import (
    METHODS,
    SAMPLE,
    Neighbours,
    features,
    nearest_in,
    nearest_training,
    project_frames,
    sample_features,
)
from nnsee.render import data_uri, image_tile, mosaic
from nnsee.report.sections.common import spread
from nnsee.report.sections.representation_section import thumbnails
from nnsee.serve.pool import WorkPool
from nnsee.serve.views import LoadedRun

K = 8
COLUMNS = 50  # sprite tiles per row
BANK_BYTES = 512 * 2**20  # the training features kept per run at most (float32)


def map_view(loaded: LoadedRun, method: str) -> dict[str, Any]:
    """The map's JSON: frames (points rounded to 4 significant digits), labels, epochs (null: final), the sprite."""
    run, test = loaded.run, loaded.splits().test
    epochs = spread([e for e in run.snapshot_epochs if e != run.epoch]) if method == "pca" else []
    with loaded.lock:
        sample = sample_features(run.model, test.images, test.labels, n=SAMPLE, transform=run.standardize,
                                 snapshots={e: run.snapshot_state(e) for e in epochs})
    rmap = project_frames(sample, method)
    images = thumbnails(test.images, rmap.index)  # large images subsampled, read a chunk at a time
    return {"run": loaded.name, "method": method, "layer": rmap.layer, "n": len(rmap.index), "n_test": len(test),
            "class_names": run.class_names, "labels": rmap.labels.tolist(), "index": rmap.index.tolist(),
            "epochs": rmap.epochs, "frames": np.round(rmap.frames, 4).tolist(),
            "explained": [None if np.isnan(r[0]) else [float(v) for v in r] for r in rmap.explained],
            "sprite": data_uri(mosaic(images, ncols=COLUMNS, pad=0)) if len(images) else None,
            "columns": COLUMNS, "tile": list(images.shape[-2:])}


class Bank:
    """A run's training features (kept when they fit in :data:`BANK_BYTES`), computed at the first question."""

    def __init__(self, loaded: LoadedRun) -> None:
        self.loaded = loaded
        self.feats: np.ndarray | None = None
        self.streamed = False

    def nearest(self, x_std: np.ndarray, k: int) -> Neighbours:
        model, train = self.loaded.run.model, self.loaded.splits().train
        with self.loaded.lock:
            q = features(model, x_std)
            if self.feats is None and not self.streamed:
                if len(train) * q.shape[1] * 4 <= BANK_BYTES:
                    self.feats = features(model, train.images, transform=self.loaded.run.standardize)
                else:
                    self.streamed = True
            if self.feats is None:
                return nearest_training(model, x_std, train.images, k=k, transform=self.loaded.run.standardize)
        return nearest_in(self.feats, q, k)


def neighbours_view(loaded: LoadedRun, bank: Bank, image: np.ndarray) -> dict[str, Any]:
    train = loaded.splits().train
    found = bank.nearest(loaded.run.standardize(image[None]), K)
    index, dist = found.index[0], found.distance[0]
    images = np.asarray(train.images[np.sort(index)], dtype=np.float32)
    rank = np.argsort(np.argsort(index))
    names = loaded.run.class_names
    return {"run": loaded.name, "searched": len(train), "blank": False, "neighbours": [
        {"index": int(i), "label": names[int(train.labels[i])], "distance": float(d),
         "image": data_uri(image_tile(np.clip(images[r], 0, 1), loaded.upscale))}
        for r, i, d in zip(rank, index, dist, strict=True)]}


def add_routes(app: FastAPI, get: Any, jobs: WorkPool) -> None:
    """Register the map's and the neighbours' routes (see the module doc)."""
    from nnsee.serve.app import MAX_BODY, in_pool, posted_image, read_limited

    kept: dict[tuple[str, str], dict[str, Any]] = {}
    banks: dict[str, Bank] = {}
    locks: dict[tuple[str, str], threading.Lock] = {}
    guard = threading.Lock()

    def map_once(loaded: LoadedRun, method: str) -> dict[str, Any]:
        key = (loaded.name, method)
        with guard:
            lock = locks.setdefault(key, threading.Lock())
        with lock:  # computed once, even when two requests ask at the same time
            if key not in kept:
                try:
                    kept[key] = map_view(loaded, method)
                except DataError as e:
                    raise HTTPException(404, f"run {loaded.name!r}: its test images cannot be read ({e})") from None
            return kept[key]

    @app.get("/api/runs/{name}/representation")
    async def representation(name: str, method: str = "pca") -> dict:
        loaded = get(name)
        if method not in METHODS:
            raise HTTPException(422, not_one_of("method", method, METHODS))
        return await in_pool(jobs, lambda: map_once(loaded, method))

    @app.post("/api/neighbours")
    async def neighbours(request: Request, run: str) -> dict:
        loaded = get(run)
        body = await read_limited(request, MAX_BODY)

        def work() -> dict:
            image = posted_image(body, loaded)
            if image is None:
                return {"run": loaded.name, "blank": True, "neighbours": []}
            with guard:
                bank = banks.setdefault(run, Bank(loaded))
            try:
                return neighbours_view(loaded, bank, image)
            except DataError as e:
                raise HTTPException(404, f"run {run!r}: its training images cannot be read ({e})") from None

        return await in_pool(jobs, work)
