"""Which test images sit in each cell of the confusion matrix, and a map of why each got its predicted class.

Cell ``(i, j)`` holds the test images of true class ``i`` that the model predicts as ``j = argmax_k z_k`` (the
diagonal: the correct ones). :func:`confusion_cells` is pure numpy: one stable sort of the cell keys
``i · K + j`` gives every cell's members in data-set order; each cell keeps its first ``cap`` indices and its full
count. :func:`predicted_maps` explains the shown images in batches, one map each, for the predicted class.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from nnsee.errors import MethodError

CAP = 24  # test images kept per cell (its count is always whole)


@dataclass(frozen=True)
class ConfusionCells:
    """``matrix[i, j]``: how many test images of true class i are predicted as j; ``index[(i, j)]``: the first
    ``cap`` of them (test indices, ascending) for each cell asked for."""

    matrix: np.ndarray  # (K, K) int64
    index: dict[tuple[int, int], np.ndarray]
    cap: int

    def count(self, i: int, j: int) -> int:
        return int(self.matrix[i, j])


def confusion_cells(logits: np.ndarray, labels: np.ndarray, n_classes: int | None = None, cap: int = CAP,
                    cells: Iterable[tuple[int, int]] | None = None) -> ConfusionCells:
    """The test indices of each non-empty cell (or of ``cells`` only), at most ``cap`` per cell, in data-set order.

    ``logits`` (N, K) or the predicted classes (N,); ``labels`` (N,) true classes in ``[0, K)``."""
    z = np.asarray(logits)
    y = np.asarray(labels).astype(np.int64, copy=False).ravel()
    k = int(n_classes if n_classes is not None else (z.shape[1] if z.ndim == 2 else max(z.max(initial=-1),
                                                                                          y.max(initial=-1)) + 1))
    predicted = z.argmax(1) if z.ndim == 2 else z.astype(np.int64, copy=False).ravel()
    if len(predicted) != len(y):
        raise MethodError(f"expected one label per image: {len(predicted)} predictions but {len(y)} labels")
    if cap < 1:
        raise MethodError(f"cap must be at least 1 image per cell, got {cap}")
    if y.size and (y.min() < 0 or y.max() >= k or predicted.max() >= k):
        raise MethodError(f"labels and predictions must be classes 0 .. {k - 1}; got labels {y.min()} .. {y.max()} "
                          f"and predictions up to {predicted.max()}")
    key = y * k + predicted
    order = np.argsort(key, kind="stable")  # grouped by cell, data-set order inside each cell
    counts = np.bincount(key, minlength=k * k)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    wanted = np.flatnonzero(counts) if cells is None else np.array([i * k + j for i, j in cells], dtype=np.int64)
    index = {(int(c // k), int(c % k)): order[starts[c]: starts[c] + min(cap, counts[c])] for c in wanted}
    return ConfusionCells(counts.reshape(k, k), index, cap)


def top_confusions(matrix: np.ndarray, top: int) -> list[tuple[int, int]]:
    """The ``top`` off-diagonal cells ``(i, j)`` of largest count (ties: row-major order), non-empty ones only."""
    off = np.asarray(matrix).astype(np.int64, copy=True)
    np.fill_diagonal(off, 0)
    nonzero = np.flatnonzero(off)
    cells = nonzero[np.argsort(-off.ravel()[nonzero], kind="stable")][:top]
    return [(int(i), int(j)) for i, j in zip(*np.unravel_index(cells, off.shape), strict=True)]


@dataclass(frozen=True)
class PredictedMaps:
    """One map (N, 1, H, W) per image for its predicted class, and what it is: ``"contributions"`` (softmax:
    ``x ⊙ W_k``, exact), ``"unit"`` (one hidden layer: ``x ⊙ W_1[j]`` of the unit ``j`` with the largest vote
    ``W_out[k, j] h_j``, in ``units``, its vote in ``votes``) or ``"gradient-x-input"`` (any other model)."""

    kind: str
    maps: np.ndarray
    units: np.ndarray | None = None
    votes: np.ndarray | None = None


def predicted_maps(model: object, x_std: np.ndarray, predicted: np.ndarray, input_shape: Sequence[int],
                   batch: int = 64) -> PredictedMaps:
    """Explain each standardized image ``x_std[n]`` (N, C, H, W) for class ``predicted[n]``, in batches of ``batch``
    (see :class:`PredictedMaps`; channels summed). Softmax regression gets its exact contributions (gradient × input
    of the logit is exactly ``x ⊙ W_k`` there); a one-hidden-layer MLP the pixels of its top-voting unit, as the
    report's gallery shows first; every other model gradient × input: one backward pass per batch, at the input's
    full resolution (Grad-CAM would need a conv layer and is coarse, occlusion and integrated gradients cost tens of
    forwards per image)."""
    import torch

    from nnsee.methods.attribution.registry import METHODS
    from nnsee.methods.base import evaluating, to_batch, to_numpy
    from nnsee.models.dense_chain import dense_stages

    shape = tuple(int(s) for s in input_shape)
    try:
        stages = dense_stages(model, shape, "the confusion maps")  # type: ignore[arg-type]
    except MethodError:
        stages = []
    out, units, votes = [], [], []
    for start in range(0, len(x_std), batch):
        x, k = x_std[start: start + batch], np.asarray(predicted[start: start + batch])
        if len(stages) == 2:
            with evaluating(model), torch.no_grad():  # type: ignore[arg-type]
                flat = to_batch(x, shape, model).flatten(1)  # type: ignore[arg-type]
                hidden = stages[0].forward(flat)  # (n, U)
                vote = stages[1].linear.weight[torch.as_tensor(k)] * hidden  # (n, U): W_out[k_n, j] h_j
                best = vote.argmax(1)
                maps = flat * stages[0].linear.weight[best]  # x ⊙ W_1[j*]
                units.append(to_numpy(best))
                votes.append(to_numpy(vote.gather(1, best[:, None])[:, 0]))
                out.append(to_numpy(maps).reshape(len(x), *shape))
        else:
            out.append(METHODS["gradient-x-input"].attribute(model, x, k, "logit").input_maps(shape))
    maps = np.concatenate(out).sum(axis=1, keepdims=True) if out else np.zeros((0, 1, *shape[1:]), np.float32)
    if len(stages) == 2:
        return PredictedMaps("unit", maps, np.concatenate(units).astype(np.int64), np.concatenate(votes))
    return PredictedMaps("contributions" if len(stages) == 1 else "gradient-x-input", maps)
