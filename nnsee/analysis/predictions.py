"""Per-image predictions and labels by data-set position, and the confusion matrix: associative accumulators.

State arrays only (npz-safe, no pickle). Merging two states whose positions overlap is refused: every image is
counted by exactly one part (a rank that counts an image twice would otherwise go unseen).
"""

from __future__ import annotations

import numpy as np

from nnsee.errors import RunError

UNSEEN = -1  # prediction/label of a position not analyzed (not reached, or skipped as unreadable)


class Predictions:
    """``predicted[i]`` and ``labels[i]`` for data-set position ``i`` (``UNSEEN`` where not analyzed)."""

    def __init__(self, n: int) -> None:
        self.predicted = np.full(n, UNSEEN, np.int64)
        self.labels = np.full(n, UNSEEN, np.int64)

    def add(self, positions: np.ndarray, predicted: np.ndarray, labels: np.ndarray) -> None:
        if np.any(self.predicted[positions] != UNSEEN):
            raise RunError("an image was analyzed twice in one pass; the analysis is inconsistent, rerun it")
        self.predicted[positions], self.labels[positions] = predicted, labels

    def merge(self, other: Predictions) -> Predictions:
        """The union of two parts; sizes must match and no position may be in both."""
        if len(other.predicted) != len(self.predicted):
            raise RunError(f"cannot merge analyses of {len(self.predicted)} and {len(other.predicted)} images")
        both = (self.predicted != UNSEEN) & (other.predicted != UNSEEN)
        if both.any():
            raise RunError(f"{int(both.sum())} images (first: position {int(np.argmax(both))}) were analyzed by two "
                           "parts given to the merge; each image must be counted once")
        out = Predictions(0)
        take = other.predicted != UNSEEN
        out.predicted = np.where(take, other.predicted, self.predicted)
        out.labels = np.where(take, other.labels, self.labels)
        return out

    @property
    def n(self) -> int:
        return int((self.predicted != UNSEEN).sum())

    def state(self) -> dict[str, np.ndarray]:
        return {"predicted": self.predicted, "labels": self.labels}

    @classmethod
    def from_state(cls, state: dict[str, np.ndarray]) -> Predictions:
        out = cls(0)
        out.predicted = np.asarray(state["predicted"], np.int64).copy()
        out.labels = np.asarray(state["labels"], np.int64).copy()
        return out


class Confusion:
    """``matrix[i, j]``: images of true class ``i`` predicted as ``j`` (int64 counts; merge = sum)."""

    def __init__(self, n_classes: int) -> None:
        self.matrix = np.zeros((n_classes, n_classes), np.int64)

    def add(self, labels: np.ndarray, predicted: np.ndarray) -> None:
        k = len(self.matrix)
        self.matrix += np.bincount(labels * k + predicted, minlength=k * k).reshape(k, k)

    def merge(self, other: Confusion) -> Confusion:
        if other.matrix.shape != self.matrix.shape:
            raise RunError(f"cannot merge confusion matrices of {len(self.matrix)} and {len(other.matrix)} classes")
        out = Confusion(0)
        out.matrix = self.matrix + other.matrix
        return out

    def state(self) -> dict[str, np.ndarray]:
        return {"matrix": self.matrix}

    @classmethod
    def from_state(cls, state: dict[str, np.ndarray]) -> Confusion:
        out = cls(0)
        out.matrix = np.asarray(state["matrix"], np.int64).copy()
        return out
