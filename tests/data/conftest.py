"""Fixtures for the data tests: ``h`` (IDX files written on the spot) and ``http_root`` (a loopback HTTP server)."""

from __future__ import annotations

import functools
import gzip
import http.server
import struct
import threading
import types
from pathlib import Path

import numpy as np
import pytest

CODES = {np.dtype(np.uint8): 0x08, np.dtype(np.int8): 0x09, np.dtype(np.int16): 0x0B, np.dtype(np.int32): 0x0C,
         np.dtype(np.float32): 0x0D, np.dtype(np.float64): 0x0E}


def idx_bytes(arr: np.ndarray) -> bytes:
    """The IDX encoding of ``arr`` (big-endian)."""
    arr = np.asarray(arr)
    head = bytes([0, 0, CODES[arr.dtype], arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return head + arr.astype(arr.dtype.newbyteorder(">")).tobytes()


def write_bytes(path: Path, data: bytes) -> Path:
    """Write ``data``, gzip-compressed if ``path`` ends in ``.gz``."""
    path.write_bytes(gzip.compress(data, mtime=0) if path.name.endswith(".gz") else data)
    return path


def write_idx(path: Path, arr: np.ndarray) -> Path:
    return write_bytes(path, idx_bytes(arr))


def tiny_idx_set(folder: Path, n_train: int = 30, n_test: int = 10, k: int = 3, gz: bool = True,
                 test: bool = True, seed: int = 0) -> dict[str, np.ndarray]:
    """The four standard IDX files of a tiny 5x5 set with ``k`` classes in ``folder``; returns the arrays."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    ext = ".gz" if gz else ""
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 5, 5), dtype=np.uint8),
        "train-labels-idx1-ubyte": (np.arange(n_train) % k).astype(np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 5, 5), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": (np.arange(n_test) % k).astype(np.uint8),
    }
    for name, arr in arrays.items():
        if test or name.startswith("train"):
            write_idx(folder / f"{name}{ext}", arr)
    return arrays


@pytest.fixture
def h():
    """The IDX helpers above, for tests (test modules cannot import this conftest under --import-mode=importlib)."""
    return types.SimpleNamespace(idx_bytes=idx_bytes, write_bytes=write_bytes, write_idx=write_idx,
                                 tiny_idx_set=tiny_idx_set)


@pytest.fixture
def http_root(tmp_path, monkeypatch):
    """(folder, base URL): a folder served over HTTP on 127.0.0.1 at an ephemeral port, for the test's duration."""
    root = tmp_path / "served"
    root.mkdir()
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):  # keep the test output clean
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
