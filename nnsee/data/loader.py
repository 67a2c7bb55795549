"""Batches of an ImageSet, in memory or streamed, optionally decoded in worker processes.

``batches(data, B, positions=p)`` yields the consecutive runs ``p[0:B], p[B:2B], ...`` in that order. For an
in-memory set with ``workers=0`` a run of consecutive positions is a view (no copy); otherwise the run's images are
gathered (in memory) or read and decoded (:class:`~nnsee.data.lazy.LazyImages`). Images that cannot be read at that
moment (a file truncated or replaced since the scan) are left out of the batch and listed in ``Batch.skipped``.

With ``workers > 0`` a ``torch.utils.data.DataLoader`` decodes whole batches in worker processes: its data set
returns one decoded batch per index (the index is a batch number; ``batch_size=None``, no automatic batching), the
default sequential sampler keeps the order, ``transform`` runs in the worker, and each worker runs one torch thread.
Workers are started by ``fork`` on Linux: the set's file table and labels are shared copy-on-write instead of
pickled to each worker, and torch on the CPU is safe to fork before any parallel region runs in the parent's
threads (elsewhere the platform's default start method is used).
"""

from __future__ import annotations

import multiprocessing
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import torch

from nnsee.data.imageset import ImageSet
from nnsee.errors import DataError

Transform = Callable[[np.ndarray], np.ndarray]


@dataclass
class Batch:
    """One batch: ``images`` (B, C, H, W) float32 after the transform, only the readable ones; ``labels`` (B,) int64;
    ``index`` (B,) int64 their positions in the ImageSet; ``skipped`` (position, path, reason) of the unreadable."""

    images: torch.Tensor
    labels: torch.Tensor
    index: torch.Tensor
    skipped: list[tuple[int, str, str]] = field(default_factory=list)

    def pin_memory(self) -> Batch:
        """This batch with its tensors in page-locked memory (what a DataLoader with ``pin_memory=True`` calls)."""
        return Batch(self.images.pin_memory(), self.labels.pin_memory(), self.index.pin_memory(), self.skipped)


def _check(data: ImageSet, batch_size: int, positions: np.ndarray | None, workers: int) -> np.ndarray:
    if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise DataError(f"batch_size must be a positive whole number, got {batch_size!r}")
    if not isinstance(workers, (int, np.integer)) or workers < 0:
        raise DataError(f"workers must be 0 (decode in this process) or a positive number of processes, got "
                        f"{workers!r}")
    n = len(data)
    if positions is None:
        return np.arange(n, dtype=np.int64)
    p = np.asarray(positions)
    if p.ndim != 1 or (p.size and p.dtype.kind not in "iu"):
        raise DataError(f"positions must be a 1-D array of whole numbers, got shape {p.shape} of {p.dtype}")
    p = p.astype(np.int64)
    if p.size and (p.min() < 0 or p.max() >= n):
        raise DataError(f"positions must lie in 0..{n - 1} (the set holds {n:,} images), found "
                        f"{int(p.min())}..{int(p.max())}")
    return p


def _read(data: ImageSet, run: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[tuple[int, str, str]]]:
    """(images, their positions, skipped) of the positions ``run``: a view when the set is in memory and the run is
    consecutive, a gathered copy when not, decoded when the set is streamed."""
    images = data.images
    if isinstance(images, np.ndarray):
        if len(run) and run[-1] - run[0] == len(run) - 1 and np.all(np.diff(run) == 1):
            return images[run[0] : run[-1] + 1], run, []
        return images[run], run, []
    return images.read(run)


def _make(data: ImageSet, run: np.ndarray, transform: Transform | None) -> Batch:
    x, kept, skipped = _read(data, run)
    if transform is not None:
        x = transform(x)
    return Batch(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)),
                 torch.from_numpy(data.labels[kept]), torch.from_numpy(np.asarray(kept, dtype=np.int64)), skipped)


class _BatchDataset(torch.utils.data.Dataset):
    """Item ``i`` is the whole decoded batch ``positions[i*B : (i+1)*B]`` (for a DataLoader with batch_size=None)."""

    def __init__(self, data: ImageSet, positions: np.ndarray, batch_size: int, transform: Transform | None) -> None:
        self.data, self.positions, self.batch_size, self.transform = data, positions, batch_size, transform

    def __len__(self) -> int:
        return -(-len(self.positions) // self.batch_size)

    def __getitem__(self, i: int) -> Batch:
        return _make(self.data, self.positions[i * self.batch_size : (i + 1) * self.batch_size], self.transform)


def _one_thread(_: int) -> None:
    torch.set_num_threads(1)


def _collate(batch: Batch) -> Batch:
    return batch


def batches(data: ImageSet, batch_size: int, *, transform: Transform | None = None,
            positions: np.ndarray | None = None, workers: int = 0, pin_memory: bool = False) -> Iterator[Batch]:
    """Consecutive runs of ``positions`` (default: all, in order), ``batch_size`` each (the last may be smaller), in
    order; decoded in ``workers`` worker processes (a torch DataLoader) when ``workers > 0`` (module docstring)."""
    p = _check(data, batch_size, positions, workers)
    pin_memory = bool(pin_memory) and torch.cuda.is_available()  # page-locked memory exists only beside CUDA
    if workers == 0:
        for start in range(0, len(p), batch_size):
            batch = _make(data, p[start : start + batch_size], transform)
            yield batch.pin_memory() if pin_memory else batch
        return
    context = multiprocessing.get_context("fork") if sys.platform.startswith("linux") else None
    loader = torch.utils.data.DataLoader(
        _BatchDataset(data, p, int(batch_size), transform), batch_size=None, shuffle=False, num_workers=int(workers),
        collate_fn=_collate, pin_memory=pin_memory, worker_init_fn=_one_thread, persistent_workers=False,
        multiprocessing_context=context)
    yield from loader
