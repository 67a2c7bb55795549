"""A finished analysis read back: the summary, and the probabilities and maps memory-mapped (nothing of size N x
map read until asked)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nnsee.analysis.folder import MAPS, MARKER, SUMMARY, read_json
from nnsee.analysis.maps import read_shard
from nnsee.errors import MethodError, RunError, not_one_of


@dataclass
class Analysis:
    """``summary`` (``DIR/summary.json``) and lazy access to what ``DIR`` holds."""

    path: Path
    summary: dict[str, Any]

    @property
    def n(self) -> int:
        return int(self.summary["n"])

    @property
    def accuracy(self) -> float | None:
        return self.summary["accuracy"]

    @property
    def predictions(self) -> np.ndarray:
        """Predicted class per data-set position, -1 where the image was skipped."""
        return np.array([-1 if p is None else p for p in self.summary["predictions"]], np.int64)

    @property
    def labels(self) -> np.ndarray:
        return np.asarray(self.summary["labels"], np.int64)

    def probabilities(self) -> np.ndarray:
        """(N, K) float32, memory-mapped; rows of skipped images are 0."""
        return np.load(self.path / "probabilities.npy", mmap_mode="r", allow_pickle=False)

    def top(self, layer: str) -> dict[str, np.ndarray]:
        """``index`` (F, k) data-set positions, ``values`` (F, k), ``position`` (F, k, 2) of the layer's top-k."""
        layers = self.summary["layers"]
        if layer not in layers:
            raise MethodError(not_one_of("layer", layer, layers))
        entry = layers[layer]
        return {"index": np.asarray(entry["top_index"], np.int64),
                "values": np.array([[np.nan if v is None else v for v in row] for row in entry["top_value"]]),
                "position": np.asarray(entry["position"], np.int64).reshape(len(entry["top_index"]), -1, 2)}

    def _method(self, method: str) -> dict[str, Any]:
        methods = self.summary["methods"]
        if method not in methods:
            raise MethodError(not_one_of("method", method, methods))
        return methods[method]

    def shards(self, method: str) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Each shard's (positions, maps memory-mapped), in data-set order."""
        folder = self.path / MAPS / method
        for name in self._method(method)["shards"]:
            yield read_shard(folder, name)

    def maps(self, method: str, cls: int | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per shard (positions, maps): memory-mapped when ``cls`` is None, else only the rows of images of true
        class ``cls`` (read from disk then)."""
        labels = self.labels
        out = []
        for positions, maps in self.shards(method):
            if cls is None:
                out.append((positions, maps))
                continue
            rows = np.flatnonzero(labels[positions] == cls)
            if len(rows):
                out.append((positions[rows], np.asarray(maps[rows])))
        return out

    def map_of(self, method: str, position: int) -> np.ndarray:
        """The map of the image at data-set ``position`` (read from its shard)."""
        for positions, maps in self.shards(method):
            hit = np.flatnonzero(positions == position)
            if len(hit):
                return np.asarray(maps[hit[0]])
        raise MethodError(f"the analysis has no {method} map of image {position} (skipped, or out of range)")

    def class_means(self, method: str) -> np.ndarray:
        """(K, *map shape) float64: the mean map of each true class (NaN for a class without images)."""
        return np.load(self.path / self._method(method)["class_means"], allow_pickle=False)


def load_analysis(path: str | Path) -> Analysis:
    """The analysis in ``path``; refused (one line) when it is not an analysis or is not complete."""
    path = Path(path)
    if not (path / SUMMARY).is_file():
        if (path / MARKER).is_file():
            raise RunError(f"the analysis in {path} is not complete (no {SUMMARY}); finish it with nnsee analyze "
                           "... --resume")
        raise RunError(f"{path} holds no nnsee analysis; make one with nnsee analyze RUN --out {path}")
    return Analysis(path, read_json(path / SUMMARY, "the analysis summary"))
