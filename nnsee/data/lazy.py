"""Images decoded on demand: an array-like float32 (N, C, H, W) whose batches are read from disk when asked for.

A :class:`LazyImages` is a *source* (a reader of stored images by their position in the file or folder: IDX and npz
payloads by positioned reads, image files by the guarded decoder), the positions it shows (``take`` narrows them,
reading nothing) and the conversions to apply to each batch read (:func:`~nnsee.data.conform.conform_images`: size,
grey / RGB), so a batch holds exactly the values the in-memory loaders give. Memory is the labels, the source's
table and the batch being read: nothing grows with the set. ``np.asarray`` decodes the whole set only within the
memory budget (``max_memory``), else a one-line DataError.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from nnsee.data.budget import default_max_memory, format_size
from nnsee.data.conform import conform_images, conformed_shape
from nnsee.errors import DataError

Skipped = list[tuple[int, str, str]]
#: Most decoded bytes read at once when a lazy set is materialized or scanned in chunks.
CHUNK_BYTES = 8 << 20


class Source(Protocol):
    """Stored images by position 0..n-1, each decoded to float32 of ``shape`` (C, H, W)."""

    n: int
    shape: tuple[int, int, int]
    where: str  # what to name in messages (a path)

    def read_into(self, positions: np.ndarray, out: np.ndarray) -> list[tuple[int, str, str]]:
        """Decode the images at ``positions`` into ``out[i]``; (i, path, reason) of those that cannot be read (their
        ``out[i]`` is left as it was)."""
        ...


def _as_positions(key: object, n: int) -> np.ndarray:
    """Indices 0..n-1 (int64) from an int, slice, list or integer / boolean array, like numpy indexing."""
    if isinstance(key, slice):
        return np.arange(n, dtype=np.int64)[key]
    index = np.asarray(key)
    if index.dtype == bool:
        if index.shape != (n,):
            raise IndexError(f"boolean index of shape {index.shape} for {n} images")
        return np.flatnonzero(index).astype(np.int64)
    if index.size and index.dtype.kind not in "iu":
        raise IndexError(f"images are indexed by integers, slices or boolean masks, got {index.dtype}")
    index = index.astype(np.int64).reshape(-1)
    if index.size and (index.min() < -n or index.max() >= n):
        raise IndexError(f"index {int(index.max() if index.max() >= n else index.min())} is out of range for "
                         f"{n} images")
    return np.where(index < 0, index + n, index)


class LazyImages:
    """Array-like float32 images (N, C, H, W), decoded (and conformed: size, grey/RGB) on demand."""

    dtype = np.dtype(np.float32)
    ndim = 4

    def __init__(self, source: Source, index: np.ndarray | None = None,
                 steps: tuple[tuple[int | None, bool | None], ...] = (), max_memory: int | None = None) -> None:
        self.source = source
        self.index = np.arange(source.n, dtype=np.int64) if index is None else np.asarray(index, dtype=np.int64)
        self.steps = steps
        self.max_memory = max_memory
        shape = tuple(source.shape)
        for size, grayscale in steps:
            shape = conformed_shape(shape, size, grayscale)
        self.shape: tuple[int, int, int, int] = (len(self.index), *shape)  # type: ignore[assignment]

    @property
    def nbytes(self) -> int:
        """N * C * H * W * 4: the size of the whole set decoded."""
        return int(np.prod(self.shape, dtype=np.int64)) * 4

    @property
    def where(self) -> str:
        return self.source.where

    def __len__(self) -> int:
        return len(self.index)

    def __repr__(self) -> str:
        return f"LazyImages({self.where!r}, shape={self.shape})"

    def take(self, index: np.ndarray) -> LazyImages:
        """The images at ``index`` (positions of this set), as a lazy set: nothing is read."""
        return LazyImages(self.source, self.index[_as_positions(index, len(self))], self.steps, self.max_memory)

    def conformed(self, size: int | None, grayscale: bool | None) -> LazyImages:
        """This set with each batch brought to ``size`` and 1 / 3 channels as it is read (nothing read now)."""
        return LazyImages(self.source, self.index, (*self.steps, (size, grayscale)), self.max_memory)

    def read(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray, Skipped]:
        """(images of the readable ones (n, C, H, W) float32, their positions, [(position, path, reason) skipped])
        for ``positions`` of this set, in their order."""
        positions = _as_positions(positions, len(self))
        raw = np.empty((len(positions), *self.source.shape), dtype=np.float32)
        failed = self.source.read_into(self.index[positions], raw)
        kept = positions
        if failed:
            ok = np.ones(len(positions), dtype=bool)
            ok[[i for i, _, _ in failed]] = False
            raw, kept = raw[ok], positions[ok]
        x = raw
        for size, grayscale in self.steps:
            x = conform_images(x, size, grayscale)
        return np.ascontiguousarray(x, dtype=np.float32), kept, [(int(positions[i]), p, r) for i, p, r in failed]

    def chunks(self, positions: np.ndarray | None = None):  # noqa: ANN201 - an iterator of read() results
        """``read`` over ``positions`` (default: all) in chunks of about :data:`CHUNK_BYTES` decoded."""
        positions = np.arange(len(self), dtype=np.int64) if positions is None else positions
        per = max(1, CHUNK_BYTES // max(1, self.nbytes // max(1, len(self))))
        for start in range(0, len(positions), per):
            yield self.read(positions[start : start + per])

    def __getitem__(self, key: int | slice | np.ndarray) -> np.ndarray:
        """Decoded copies: an int gives one image (C, H, W); an image that cannot be read is a DataError."""
        single = isinstance(key, (int, np.integer))
        x, _, skipped = self.read(np.array([key]) if single else key)
        if skipped:
            position, path, reason = skipped[0]
            raise DataError(f"image {position} ({path}) cannot be read now: {reason}; it was readable when the data "
                            f"set was scanned: restore the file or load the data set again")
        return x[0] if single else x

    def __array__(self, dtype: object = None, copy: object = None) -> np.ndarray:
        """The whole set decoded, only within the memory budget (else a one-line DataError)."""
        budget = self.max_memory if self.max_memory is not None else default_max_memory()
        if self.nbytes > budget:
            raise DataError(
                f"{self.where}: decoding all {len(self):,} images at once would take {format_size(self.nbytes)} "
                f"as float32, over the memory budget of {format_size(budget)}; this data set is streamed batch by "
                "batch: use a command or view that streams it, give a subset, or raise --max-memory (e.g. "
                f"--max-memory {max(1, -(-self.nbytes // 2**30))}G) if the machine has the memory")
        out = np.empty(self.shape, dtype=np.float32)
        start = 0
        for x, _, skipped in self.chunks():
            if skipped:
                position, path, reason = skipped[0]
                raise DataError(f"{self.where}: image {position} ({path}) cannot be read now: {reason}; restore the "
                                "file or load the data set again")
            out[start : start + len(x)] = x
            start += len(x)
        return out if dtype is None else out.astype(dtype, copy=False)
