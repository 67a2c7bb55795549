"""The batches one training process takes: its share of each global batch, in memory or streamed from disk; and
its block of the validation set.

One epoch's seeded order ``o`` (a permutation of the training set, the same on every rank) is cut into global
batches ``o[tB : (t+1)B]``. Of global batch ``t`` (``L_t`` images), rank ``r`` of ``W`` takes the ``r``-th
contiguous block by ``np.array_split``'s rule (:func:`nnsee.distributed.block`), so the ranks' shares together
are exactly the one-process batch. Every rank takes the same number of steps, ``ceil(n / B)``: a rank whose
share of the last batch is empty takes an empty step (its gradient is zero, and its all-reduce still happens).

With the loss of rank r taken as ``(W / L_t) · Σ_{i in share r} ℓ_i``, DistributedDataParallel's average over
ranks, ``(1/W) Σ_r ∇loss_r = (1/L_t) Σ_{i in batch t} ∇ℓ_i``, is the one-process mean gradient, whatever the
shares' sizes (up to float rounding).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nnsee.data.imageset import ImageSet
from nnsee.distributed import Dist, block, rank_positions


@dataclass
class Step:
    """One step's images and labels (this rank's share), the global batch size ``planned`` and skipped images."""

    images: torch.Tensor
    labels: torch.Tensor
    planned: int
    skipped: list[tuple[int, str, str]] = field(default_factory=list)


def rank_share(order: np.ndarray, batch_size: int, dist: Dist | None) -> np.ndarray:
    """This rank's positions of the epoch, global batch by global batch (all of ``order`` without ``dist``)."""
    if dist is None:
        return order
    n = len(order)
    parts = []
    for start in range(0, n, batch_size):
        a, b = block(min(batch_size, n - start), dist.rank, dist.world_size)
        parts.append(order[start + a : start + b])
    return np.concatenate(parts) if parts else order[:0]


def steps(data: ImageSet, order: np.ndarray, batch_size: int, dist: Dist | None, *,
          transform: Callable[[np.ndarray], np.ndarray] | None, workers: int, pin_memory: bool,
          images: torch.Tensor | None = None, labels: torch.Tensor | None = None) -> Iterator[Step]:
    """The ``ceil(n / batch_size)`` steps of one epoch for this rank (module docstring).

    ``images``/``labels`` given (the standardized training set, in memory): each share is gathered from them.
    Else the shares are read through :func:`nnsee.data.loader.batches` (decoded in ``workers`` processes,
    standardized by ``transform``), which keeps the order, so the steps hold the same images either way.
    """
    n = len(order)
    total = math.ceil(n / batch_size)
    planned = [min(batch_size, n - t * batch_size) for t in range(total)]
    if images is not None and labels is not None:
        for t in range(total):
            rows = order[t * batch_size : t * batch_size + planned[t]]
            a, b = block(len(rows), dist.rank, dist.world_size) if dist else (0, len(rows))
            mine = torch.from_numpy(rows[a:b]).to(images.device)
            yield Step(images.index_select(0, mine), labels.index_select(0, mine), planned[t])
        return
    from nnsee.data.loader import batches

    share = block(batch_size, dist.rank, dist.world_size) if dist else (0, batch_size)
    per_step = share[1] - share[0]
    done = 0
    for t, batch in enumerate(batches(data, per_step, transform=transform, positions=rank_share(order, batch_size,
                                                                                                 dist),
                                      workers=workers, pin_memory=pin_memory)):
        yield Step(batch.images, batch.labels, planned[t], batch.skipped)
        done = t + 1
    for t in range(done, total):  # this rank's share of the last batch is empty
        shape = (0, *data.shape)
        yield Step(torch.empty(shape, dtype=torch.float32), torch.empty(0, dtype=torch.int64), planned[t])


@torch.no_grad()
def validation_sums(model: nn.Module, data: ImageSet, dist: Dist | None, images: torch.Tensor | None,
                    labels: torch.Tensor, *, transform: Callable[[np.ndarray], np.ndarray] | None,
                    workers: int, skipped: list[tuple[int, str, str]] | None = None) -> list[float]:
    """``[Σ cross-entropy, Σ correct, count]`` of ``model`` (in eval mode) over this rank's contiguous block of
    ``data`` (:func:`~nnsee.distributed.rank_positions`), in chunks: slices of ``images`` (standardized, in memory)
    when given, else read through :func:`nnsee.data.loader.batches` and standardized by ``transform`` (images that
    cannot be read are left out and appended to ``skipped``)."""
    from nnsee.train.evaluate import chunk_size

    device = next(model.parameters()).device
    positions = rank_positions(len(data), dist)
    size = chunk_size(data.shape)
    if images is not None:
        chunks: Iterator[tuple[torch.Tensor, torch.Tensor]] = (
            (images[p[0] : p[-1] + 1], labels[p[0] : p[-1] + 1])
            for p in (positions[s : s + size] for s in range(0, len(positions), size)))
    else:
        from nnsee.data.loader import batches

        cuda = device.type == "cuda"
        def read() -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
            for b in batches(data, size, transform=transform, positions=positions, workers=workers, pin_memory=cuda):
                if skipped is not None:
                    skipped.extend(b.skipped)
                yield b.images.to(device, non_blocking=cuda), b.labels.to(device, non_blocking=cuda)

        chunks = read()
    loss, correct, count = 0.0, 0, 0
    for x, y in chunks:
        logits = model(x)
        loss += F.cross_entropy(logits, y, reduction="sum").item()
        correct += int((logits.argmax(1) == y).sum())
        count += len(y)
    return [loss, float(correct), float(count)]
