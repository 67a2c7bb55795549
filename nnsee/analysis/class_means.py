"""The mean map per class of one method: float64 sums and counts per true class (merge: both add).

Float64 sums of float32 maps: merging parts in another grouping changes a sum only by float64 rounding
(about 1e-16 of its size), far below the maps' own float32 rounding.
"""

from __future__ import annotations

import numpy as np
import torch

from nnsee.errors import RunError


class ClassMeans:
    """``sums[c]`` (float64) and ``counts[c]`` of the maps of the images of true class ``c``."""

    def __init__(self, n_classes: int) -> None:
        self.n_classes = n_classes
        self.sums: np.ndarray | None = None
        self.counts = np.zeros(n_classes, np.int64)

    def add(self, maps: np.ndarray | torch.Tensor, labels: np.ndarray) -> None:
        maps = torch.as_tensor(maps).detach().to("cpu", torch.float64)
        if self.sums is None:
            self.sums = np.zeros((self.n_classes, *maps.shape[1:]), np.float64)
        elif tuple(maps.shape[1:]) != self.sums.shape[1:]:
            raise RunError(f"maps changed shape between batches ({tuple(maps.shape[1:])} vs {self.sums.shape[1:]})")
        sums = torch.from_numpy(self.sums)
        sums.index_add_(0, torch.as_tensor(labels, dtype=torch.int64), maps)
        self.counts += np.bincount(labels, minlength=self.n_classes)

    def merge(self, other: ClassMeans) -> ClassMeans:
        if other.n_classes != self.n_classes:
            raise RunError(f"cannot merge class means of {self.n_classes} and {other.n_classes} classes")
        if self.sums is not None and other.sums is not None and self.sums.shape != other.sums.shape:
            raise RunError(f"cannot merge maps of shapes {self.sums.shape[1:]} and {other.sums.shape[1:]}")
        out = ClassMeans(self.n_classes)
        parts = [s for s in (self.sums, other.sums) if s is not None]
        out.sums = parts[0] + parts[1] if len(parts) == 2 else (parts[0].copy() if parts else None)
        out.counts = self.counts + other.counts
        return out

    def means(self) -> np.ndarray | None:
        """``sums[c] / counts[c]`` (float64; NaN for a class without images); None before any map."""
        if self.sums is None:
            return None
        shape = (-1,) + (1,) * (self.sums.ndim - 1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.sums / self.counts.reshape(shape)

    def state(self) -> dict[str, np.ndarray]:
        sums = self.sums if self.sums is not None else np.zeros((0,), np.float64)
        return {"sums": sums, "counts": self.counts, "n_classes": np.array(self.n_classes)}

    @classmethod
    def from_state(cls, state: dict[str, np.ndarray]) -> ClassMeans:
        out = cls(int(state["n_classes"]))
        sums = np.asarray(state["sums"], np.float64)
        out.sums = sums.copy() if sums.ndim > 1 else None
        out.counts = np.asarray(state["counts"], np.int64).copy()
        return out
