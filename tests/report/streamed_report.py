"""Data and work for the streamed-report tests (the memory case's child imports it as ``tests.report.streamed_report``,
so it needs nothing from the tests' own path): an uncompressed ``.npz`` written chunk by chunk, and a report built
on a set loaded under a memory budget."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
from numpy.lib import format as npy


def write_banded_npz(path: Path, n: int, shape: tuple[int, int, int], n_classes: int = 4, *, seed: int = 0,
                     chunk: int = 8192) -> int:
    """Write ``n`` uint8 images ``x`` (n, *shape) and labels ``y = i mod n_classes`` to an uncompressed .npz, a
    chunk of images at a time (the whole set is never held): noise in 0..127, and class k's rows 3k, 3k + 1 raised by
    100, so a small model learns them but not perfectly. Returns the file's size in bytes."""
    rng = np.random.default_rng(seed)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED, allowZip64=True) as z:
        with z.open("x.npy", "w", force_zip64=True) as f:
            npy.write_array_header_1_0(f, {"descr": "|u1", "fortran_order": False, "shape": (n, *shape)})
            for start in range(0, n, chunk):
                y = np.arange(start, min(n, start + chunk)) % n_classes
                x = (np.frombuffer(rng.bytes(len(y) * int(np.prod(shape))), np.uint8) >> 1).reshape(len(y), *shape)
                for k in range(n_classes):
                    x[y == k, :, 3 * k : 3 * k + 2] += 100
                f.write(x.tobytes())
        with z.open("y.npy", "w") as f:
            npy.write_array(f, np.arange(n, dtype=np.int64) % n_classes)
    return path.stat().st_size


def report_under_budget(run: str, npz: str, out: str, max_memory: int) -> int:
    """The report of ``run`` on the data set ``npz`` loaded as ``nnsee report`` loads one (streamed when its decoded
    float32 copy exceeds ``max_memory``; a set that is not streamed fails), one torch thread. Returns the number of
    training images."""
    import torch

    from nnsee.data import load_data
    from nnsee.report import build_report

    torch.set_num_threads(1)
    splits = load_data(npz, seed=0, max_memory=max_memory)
    if not splits.train.streamed:
        raise RuntimeError(f"{npz} was loaded into memory under a budget of {max_memory:,} bytes")
    build_report(run, out, splits=splits)
    return len(splits.train)
