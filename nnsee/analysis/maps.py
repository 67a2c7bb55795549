"""Per-image maps on disk: shards ``DIR/maps/<method>/r<RANK>-<SHARD>.npy`` (float32 (n, *map shape)) beside
``...positions.npy`` (int64 data-set positions of their rows), each written atomically, read back memory-mapped.

Float32, not float16: gradient maps (saliency, gradient x input) often lie below float16's smallest normal value
(6e-5) and would lose their digits or vanish, and the class means and tests compare against the methods' own
float32 output.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nnsee.io import atomic_write


def save_npy(path: Path, array: np.ndarray) -> None:
    """``np.save`` of ``array`` onto ``path`` atomically (through an open file: np.save would add ``.npy``)."""

    def write(tmp: Path) -> None:
        with open(tmp, "xb") as f:
            np.save(f, array, allow_pickle=False)

    atomic_write(path, write)


def shard_name(rank: int, shard: int) -> str:
    return f"r{rank:03d}-{shard:06d}"


def save_pieces(path: Path, pieces: list[np.ndarray]) -> None:
    """The float32 concatenation of ``pieces`` (same trailing shape) saved as one ``.npy`` atomically, written piece
    by piece: no concatenated copy is made. No pieces: an empty array of shape (0,)."""
    from numpy.lib import format as npy

    rows = sum(len(p) for p in pieces)
    shape = (rows, *pieces[0].shape[1:]) if pieces else (0,)

    def write(tmp: Path) -> None:
        with open(tmp, "xb") as f:
            npy.write_array_header_1_0(f, {"descr": npy.dtype_to_descr(np.dtype(np.float32)), "fortran_order": False,
                                           "shape": shape})
            for piece in pieces:
                f.write(memoryview(np.ascontiguousarray(piece, np.float32)).cast("B"))

    atomic_write(path, write)


def write_shard(folder: Path, name: str, pieces: list[np.ndarray], positions: np.ndarray) -> str:
    """Write one shard: its maps (the batches' ``pieces``), then their positions (the positions file's presence
    marks a whole shard); returns its stem."""
    folder.mkdir(parents=True, exist_ok=True)
    save_pieces(folder / f"{name}.npy", pieces)
    save_npy(folder / f"{name}.positions.npy", np.asarray(positions, np.int64))
    return name


def read_shard(folder: Path, name: str) -> tuple[np.ndarray, np.ndarray]:
    """(positions, maps) of one shard, the maps memory-mapped (nothing read until used)."""
    positions = np.load(folder / f"{name}.positions.npy", allow_pickle=False)
    return positions, np.load(folder / f"{name}.npy", mmap_mode="r", allow_pickle=False)
