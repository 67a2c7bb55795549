"""Arrays of images stored uncompressed in a file (IDX payloads, npz members), read by explicit positioned reads.

A batch is read with ``os.preadv`` straight into one buffer (one call per run of consecutive positions), then
converted exactly as the in-memory loaders convert the whole array: ``astype(float32)``, ``/ 255`` for uint8, the
layout brought to (C, H, W). No memory map: pages of a mapped file count in the resident size once touched.

Compressed data (``.gz`` IDX, deflated npz members) is decompressed once into the stream cache,
``$NNSEE_CACHE`` or ``$XDG_CACHE_HOME/nnsee/stream`` or ``~/.cache/nnsee/stream``: one file per source, named by a
hash of its real path, size, modification time, inode and member, written atomically (a stopped copy leaves only a
temporary file); then read by position like any other.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import numpy as np

from nnsee.errors import DataError, NnseeError
from nnsee.io import atomic_path


def cache_dir() -> Path:
    """Where decompressed copies of compressed data sets are kept (rule in the module docstring)."""
    if os.environ.get("NNSEE_CACHE"):
        return Path(os.environ["NNSEE_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "nnsee" / "stream"


def cached(path: Path, member: str, size: int, fill: Callable[[BinaryIO], None]) -> Path:
    """The cache file holding ``member`` of ``path`` decompressed (``size`` bytes), made by ``fill(file)`` if it is
    not there yet (atomically: a stopped or failed copy leaves nothing taken for a result)."""
    info = os.stat(path)
    key = f"{os.path.realpath(path)}\0{info.st_size}\0{info.st_mtime_ns}\0{info.st_ino}\0{member}"
    folder = cache_dir()
    target = folder / f"{hashlib.sha256(key.encode('utf-8', 'surrogateescape')).hexdigest()[:32]}.bin"
    try:
        if target.is_file() and target.stat().st_size == size:
            return target
        folder.mkdir(parents=True, exist_ok=True)
        with atomic_path(target) as tmp, open(tmp, "xb") as f:
            fill(f)
    except NnseeError as e:
        if isinstance(e, DataError):
            raise
        raise DataError(f"{path}: cannot keep its decompressed copy for streaming in {folder}: {e}; set "
                        "NNSEE_CACHE to a folder with room, or load it whole (--no-stream)") from None
    except OSError as e:
        raise DataError(f"{path}: cannot keep its decompressed copy for streaming in {folder}: {e.strerror or e}; "
                        "set NNSEE_CACHE to a folder with room, or load it whole (--no-stream)") from None
    if target.stat().st_size != size:
        raise DataError(f"{path}: its decompressed copy {target} holds {target.stat().st_size:,} bytes, expected "
                        f"{size:,}; delete it and load again")
    return target


class ArrayFileSource:
    """``n`` images stored from byte ``offset`` of ``path`` as ``dtype`` values of ``item_shape`` each, in layout
    ``nhw`` (one channel), ``nchw`` or ``nhwc``; ``where`` names the data set in messages."""

    def __init__(self, path: Path, offset: int, n: int, dtype: np.dtype, item_shape: tuple[int, ...], layout: str,
                 where: str) -> None:
        self.path, self.offset, self.n, self.dtype = Path(path), int(offset), int(n), np.dtype(dtype)
        self.item_shape, self.layout, self.where = tuple(int(d) for d in item_shape), layout, where
        self.item_bytes = int(np.prod(self.item_shape, dtype=np.int64)) * self.dtype.itemsize
        if layout == "nhw":
            self.shape = (1, *self.item_shape)
        elif layout == "nchw":
            self.shape = self.item_shape
        else:
            h, w, c = self.item_shape
            self.shape = (c, h, w)
        self._fd: int | None = None
        self._pid = -1

    def __getstate__(self) -> dict:  # a worker started by spawn opens its own descriptor
        return {**self.__dict__, "_fd": None, "_pid": -1}

    def __del__(self) -> None:
        if self._fd is not None and self._pid == os.getpid():
            os.close(self._fd)

    def _descriptor(self) -> int:
        """This process's descriptor of the file (a forked worker opens its own), a regular file checked once."""
        if self._fd is None or self._pid != os.getpid():
            try:
                fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0))
            except OSError as e:
                raise DataError(f"{self.where}: cannot open {self.path} to read images: {e.strerror or e}; the data "
                                "set was moved or removed since it was loaded: load it again") from None
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode) or info.st_size < self.offset + self.n * self.item_bytes:
                os.close(fd)
                raise DataError(f"{self.where}: {self.path} changed since it was loaded (now {info.st_size:,} bytes,"
                                f" not a file of {self.n:,} images): load the data set again")
            self._fd, self._pid = fd, os.getpid()
        return self._fd

    def read_into(self, positions: np.ndarray, out: np.ndarray) -> list[tuple[int, str, str]]:
        """Read the images at ``positions`` into ``out``: in ascending order of position, one ``preadv`` per run of
        consecutive positions, then put back in the order asked for."""
        k, ib = len(positions), self.item_bytes
        if k == 0:
            return []
        order = None if np.all(positions[1:] >= positions[:-1]) else np.argsort(positions, kind="stable")
        ascending = positions if order is None else positions[order]
        fd, buf = self._descriptor(), np.empty(k * ib, dtype=np.uint8)
        view = memoryview(buf)
        breaks = np.flatnonzero(np.diff(ascending) != 1) + 1
        for a, b in zip(np.r_[0, breaks], np.r_[breaks, k], strict=True):
            want = (b - a) * ib
            got = os.preadv(fd, [view[a * ib : b * ib]], self.offset + int(ascending[a]) * ib)
            if got != want:
                raise DataError(f"{self.where}: {self.path} ended early (read {got:,} of {want:,} bytes): it changed "
                                "since it was loaded; load the data set again")
        x = buf.view(self.dtype).reshape(k, *self.item_shape).astype(np.float32)
        if self.dtype == np.uint8:
            x /= np.float32(255.0)
        if self.layout == "nhwc":
            x = x.transpose(0, 3, 1, 2)
        elif self.layout == "nhw":
            x = x[:, None]
        if order is None:
            out[:] = x
        else:
            out[order] = x
        return []
