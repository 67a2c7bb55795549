"""Sizes a data file declares, checked before they are allocated (issue 11, item 3 and its low classes): npz labels
that set the class count, npz arrays whose headers or zip entries lie, empty images, IDX headers past the budget, gzip
bombs, and npz/IDX paths that are not regular files.

Each case is a one-line ``DataError``; the allocation cases run in a child process under a 1 GiB address-space limit
that reports its own peak (VmHWM: ru_maxrss would carry the pytest process's peak over fork and exec).
"""

from __future__ import annotations

import gzip
import io
import os
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
from limited_child import call, run_limited

from nnsee.data.idx import load_idx_pair
from nnsee.data.npz import MAX_CLASSES, load_npz
from nnsee.errors import DataError

TARGETS = {"npz": "nnsee.data.npz:load_npz", "idx": "nnsee.data.idx:read_idx", "pair": "nnsee.data.idx:load_idx_pair"}


def refused_in_a_limited_child(cases: list[tuple[str, list[str], str]], timeout: float = 300) -> None:
    """Run each (loader, args, expected words) in one child under a 1 GiB limit: each is refused in one line,
    naming the file and saying the words, in under 2 s, and the child's peak stays under 600 MB."""
    results, peak_kb = run_limited([call(TARGETS[loader], *args) for loader, args, _ in cases], timeout=timeout)
    for (_, args, says), (seconds, outcome) in zip(cases, results, strict=True):
        assert outcome.startswith("REFUSED ") and says in outcome, (args, outcome)
        assert any(Path(a).name in outcome for a in args), (args, outcome)
        assert "\n" not in outcome and seconds < 2, (args, outcome, seconds)
    assert peak_kb < 600_000, peak_kb


def npz(path: Path, **arrays: np.ndarray) -> str:
    np.savez(path, **arrays)
    return str(path)


def _idx_head(code: int, *dims: int) -> bytes:
    return bytes([0, 0, code, len(dims)]) + struct.pack(f">{len(dims)}I", *dims)


def _lying_zip(path: Path, shape: tuple[int, ...], dtype: str, *, declared: int | None = None,
               stored: bool = True) -> str:
    """An npz whose x.npy has an npy header for ``shape`` and ``dtype`` but 64 bytes of data, its zip entry
    patched to declare ``declared`` bytes (both in the local and the central header; None: the true size)."""
    from numpy.lib import format as npy

    head = io.BytesIO()
    npy.write_array_header_1_0(head, {"descr": np.dtype(dtype).str, "fortran_order": False, "shape": shape})
    body = head.getvalue() + b"\0" * 64
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED) as z:
        z.writestr("x.npy", body)
        y = io.BytesIO()
        np.save(y, np.zeros(shape[0] if shape[0] < 10 else 1, np.int64))
        z.writestr("y.npy", y.getvalue())
    if declared is None:
        return str(path)
    raw = bytearray(path.read_bytes())
    local = raw.index(b"PK\x03\x04")
    central = raw.index(b"PK\x01\x02")
    struct.pack_into("<I", raw, local + 22, declared)
    struct.pack_into("<I", raw, central + 24, declared)
    if stored:
        struct.pack_into("<I", raw, local + 18, declared)
        struct.pack_into("<I", raw, central + 20, declared)
    path.write_bytes(bytes(raw))
    return str(path)


# --------------------------------------------------------------------------------------------------- npz


def test_npz_sizes_and_labels_that_would_allocate_are_refused_in_bounded_memory(tmp_path: Path) -> None:
    x3 = np.zeros((3, 4, 4), np.uint8)
    x100 = np.zeros((100, 4, 4), np.uint8)
    refused_in_a_limited_child([
        ("npz", [npz(tmp_path / "label-2-40.npz", x=x3, y=np.array([0, 1, 2 ** 40]))], "holds label 1,099,511,627,776"),
        ("npz", [npz(tmp_path / "label-1e7.npz", x=x100, y=np.r_[np.zeros(99, int), 10 ** 7])],
         "10,000,001 classes, but there are 100 labels"),
        ("npz", [npz(tmp_path / "names-1e6.npz", x=x3, y=np.arange(3),
                     class_names=np.array([f"c{i}" for i in range(10 ** 6)]))], "lists 1,000,000 classes"),
        ("npz", [_lying_zip(tmp_path / "stored-lie.npz", (100, 1000, 1000), "<f8", declared=800_000_128)],
         "which cannot be"),
        ("npz", [_lying_zip(tmp_path / "deflate-lie.npz", (100, 1000, 1000), "<f8", declared=800_000_128,
                            stored=False)], "which cannot be"),
        ("npz", [_lying_zip(tmp_path / "header-lie.npz", (10 ** 6, 1000, 1000), "|u1")],
         "does not match its 192 bytes"),
        ("npz", [_lying_zip(tmp_path / "over-budget.npz", (2000, 1000, 1000), "|u1", declared=2_000_000_128,
                            stored=False)], "cannot be"),
    ])


def test_the_class_count_is_bounded_by_the_labels_present_unless_class_names_say_more(tmp_path: Path) -> None:
    x = np.zeros((3, 2, 2), np.uint8)
    assert load_npz(npz(tmp_path / "a.npz", x=x, y=np.array([0, 2, 1]))).class_names == ["0", "1", "2"]
    with pytest.raises(DataError, match=r"holds label 3, so 4 classes, but there are 3 labels"):
        load_npz(npz(tmp_path / "b.npz", x=x, y=np.array([0, 3, 1])))
    names = np.array(["a", "b", "c", "d", "e"])  # more classes than images: the names say so
    assert load_npz(npz(tmp_path / "c.npz", x=x, y=np.array([0, 4, 1]), class_names=names)).n_classes == 5
    many = np.array([f"c{i}" for i in range(MAX_CLASSES + 1)])
    with pytest.raises(DataError, match=f"lists {MAX_CLASSES + 1:,} classes, more than the {MAX_CLASSES:,}"):
        load_npz(npz(tmp_path / "d.npz", x=x, y=np.array([0, 1, 2]), class_names=many))


@pytest.mark.parametrize(("x", "says"), [
    (np.zeros((0, 4, 4), np.uint8), "holds no images (shape 0x4x4)"),
    (np.zeros((3, 0, 0), np.uint8), "its images are empty (shape 3x0x0)"),
    (np.zeros((3, 5, 0), np.float32), "its images are empty"),
    (np.zeros((0, 3, 5, 5), np.float32), "holds no images"),
])
def test_an_npz_of_no_images_or_empty_images_is_one_line(tmp_path: Path, x: np.ndarray, says: str) -> None:
    path = npz(tmp_path / "empty.npz", x=x, y=np.zeros(len(x), np.int64))
    with pytest.raises(DataError, match=says.replace("(", r"\(").replace(")", r"\)")) as info:
        load_npz(path)
    assert "empty.npz" in str(info.value)


# --------------------------------------------------------------------------------------------------- IDX


def test_idx_sizes_past_the_budget_and_gzip_bombs_are_refused_in_bounded_memory(tmp_path: Path) -> None:
    noise = np.random.default_rng(0).integers(0, 256, 1_900_000, dtype=np.uint8).tobytes()  # incompressible
    claim = tmp_path / "claim-idx3-ubyte.gz"
    claim.write_bytes(gzip.compress(_idx_head(0x08, 2000, 1000, 1000) + noise, compresslevel=1))
    assert 1_800_000 < claim.stat().st_size < 2_000_000  # 1.9 MB claiming 2 GB: within deflate's ratio
    bomb = tmp_path / "bomb-idx3-ubyte.gz"  # declares 100 kB, holds 300 MB of zeros
    with gzip.open(bomb, "wb") as f:
        f.write(_idx_head(0x08, 10, 100, 100))
        for _ in range(300):
            f.write(bytes(1 << 20))
    labels = tmp_path / "labels-idx1-ubyte"
    labels.write_bytes(_idx_head(0x0C, 3) + struct.pack(">3i", 0, 1, 10 ** 7))
    images = tmp_path / "images-idx3-ubyte"
    images.write_bytes(_idx_head(0x08, 3, 2, 2) + bytes(12))
    refused_in_a_limited_child([
        ("idx", [str(claim)], "8,000,000,000 bytes as float32, over the 4,294,967,296-byte limit"),
        ("pair", [str(claim), str(labels)], "over the 4,294,967,296-byte limit"),
        ("idx", [str(bomb)], "extra bytes after the data"),
        ("pair", [str(images), str(labels)], "holds label 10,000,000, so 10,000,001 classes, but there are 3 labels"),
    ])


@pytest.mark.parametrize(("dims", "says"), [((0, 28, 28), "holds no images"), ((5, 0, 0), "its images are empty")])
def test_idx_of_no_images_or_empty_images_is_one_line(tmp_path: Path, dims: tuple[int, ...], says: str) -> None:
    images = tmp_path / "i-idx3-ubyte"
    images.write_bytes(_idx_head(0x08, *dims))
    labels = tmp_path / "l-idx1-ubyte"
    labels.write_bytes(_idx_head(0x08, dims[0]) + bytes(dims[0]))
    with pytest.raises(DataError, match=says) as info:
        load_idx_pair(images, labels)
    assert "i-idx3-ubyte" in str(info.value)


# ------------------------------------------------------------------------------------ not a regular file


def test_npz_and_idx_paths_that_are_not_regular_files_are_refused_at_once(tmp_path: Path) -> None:
    """A FIFO (never waited on), a link to /dev/zero (never read), a directory: each named like an npz, a raw and a
    gzip IDX file."""
    cases = []
    for kind in ("fifo", "dev-zero", "directory"):
        for name in ("data.npz", "train-images-idx3-ubyte", "train-images-idx3-ubyte.gz"):
            path = tmp_path / kind / name
            path.parent.mkdir(exist_ok=True)
            if kind == "fifo":
                os.mkfifo(path)
            elif kind == "dev-zero":
                path.symlink_to("/dev/zero")
            else:
                path.mkdir()
            cases.append(("npz" if name.endswith(".npz") else "idx", [str(path)], "not a regular file"))
    refused_in_a_limited_child(cases, timeout=60)
