"""IDX files (the MNIST / Fashion-MNIST / KMNIST format), raw or gzip-compressed, read defensively.

Layout: two zero bytes, a dtype code, ``ndim``, then ``ndim`` big-endian uint32 sizes, then
``prod(sizes) * itemsize`` big-endian values. Every check runs on the header before any payload-sized
buffer exists, so a hostile header (sizes of 2**32 - 1) costs nothing: the file must be a regular file, the
declared values as float32 must fit the image budget (:data:`nnsee.data.npz.MAX_IMAGE_BYTES`), and the declared
payload must be the file's size (raw) or at most 1,100 times it (gzip). A ``.gz`` is then stream-decoded chunk by
chunk, never past the declared size: one byte more is refused, so a gzip bomb costs no more memory than its
(checked) declaration, and a stream shorter than its claim no more than what it holds.
"""

from __future__ import annotations

import gzip
import hashlib
import math
import os
import struct
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from nnsee.data.imageset import ImageSet
from nnsee.data.npz import MAX_DEFLATE_RATIO, MAX_IMAGE_BYTES, check_image_budget, class_names_for
from nnsee.errors import DataError
from nnsee.io import open_regular

#: IDX dtype code -> big-endian numpy dtype.
IDX_DTYPES: dict[int, str] = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}

#: Largest payload accepted (bytes): what becomes at most MAX_IMAGE_BYTES of float32 values.
MAX_PAYLOAD_BYTES = MAX_IMAGE_BYTES

_CHUNK = 1 << 20


@dataclass(frozen=True)
class IdxHeader:
    """A parsed IDX header: element ``dtype`` (big-endian), ``dims``, and the header's length in bytes."""

    dtype: np.dtype
    dims: tuple[int, ...]
    header_bytes: int

    @property
    def payload_bytes(self) -> int:
        return math.prod(self.dims) * self.dtype.itemsize


def _is_gzip(path: Path) -> bool:
    return path.name.lower().endswith(".gz")


def _parse_header(path: Path, head: bytes) -> IdxHeader:
    if len(head) < 4:
        raise DataError(f"{path}: not an IDX file: only {len(head)} bytes, an IDX header needs at least 4")
    if head[0] != 0 or head[1] != 0:
        raise DataError(
            f"{path}: not an IDX file: the first two bytes must be zero, got {head[:2].hex()} "
            "(is it compressed, or another format?)"
        )
    code, ndim = head[2], head[3]
    if code not in IDX_DTYPES:
        known = ", ".join(f"0x{c:02X}" for c in IDX_DTYPES)
        raise DataError(f"{path}: unknown IDX dtype code 0x{code:02X} (known: {known})")
    if ndim == 0:
        raise DataError(f"{path}: IDX header declares ndim=0; an IDX array needs at least one dimension")
    need = 4 + 4 * ndim
    if len(head) < need:
        raise DataError(
            f"{path}: IDX header declares ndim={ndim}, which needs {need} header bytes, but the file has only "
            f"{len(head)} bytes"
        )
    dims = struct.unpack(f">{ndim}I", head[4:need])
    return IdxHeader(np.dtype(IDX_DTYPES[code]), tuple(int(d) for d in dims), need)


@contextmanager
def _open(path: Path) -> Iterator[tuple[Any, int]]:
    """The decoded stream of ``path`` (a regular file, gunzipped if named .gz) and the file's size on disk."""
    try:
        raw = open_regular(path, "an IDX file", error=DataError)
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    with raw:
        size = os.fstat(raw.fileno()).st_size
        if not _is_gzip(path):
            yield raw, size
            return
        with gzip.GzipFile(fileobj=raw, mode="rb") as f:
            yield f, size


def _gzip_error(path: Path, e: BaseException) -> DataError:
    if isinstance(e, EOFError):
        what = "the gzip file is truncated (it ended before the end-of-stream marker)"
    elif isinstance(e, gzip.BadGzipFile) and "CRC" in str(e):
        what = f"the gzip file is corrupt ({e})"
    elif isinstance(e, gzip.BadGzipFile):
        what = f"the file is named .gz but is not valid gzip ({e})"
    else:
        what = f"the gzip data is corrupt ({type(e).__name__}: {e})"
    return DataError(f"{path}: {what}; download it again or replace it with a good copy")


def _read_exact(f: Any, path: Path, n: int) -> bytes:
    """Up to ``n`` bytes from ``f`` (fewer only at end of stream), ``_CHUNK`` at a time: memory follows what the
    stream holds, not what a header claims. Decompression errors become a one-line :class:`DataError`."""
    parts, got = [], 0
    try:
        while got < n:
            chunk = f.read(min(_CHUNK, n - got))
            if not chunk:
                break
            parts.append(chunk)
            got += len(chunk)
    except (EOFError, gzip.BadGzipFile, zlib.error) as e:
        raise _gzip_error(path, e) from e
    except OSError as e:
        raise DataError(f"{path}: read failed: {e}") from e
    return b"".join(parts)


def _check_size(path: Path, header: IdxHeader, file_size: int, limit: bool = True) -> None:
    """Refuse a declared payload that cannot be in this file of ``file_size`` bytes, or that passes the budget
    (as float32 values; unless not ``limit``: a streamed file is never held whole), before reading or allocating
    it."""
    declared = header.payload_bytes
    shape = "x".join(map(str, header.dims))
    if limit and math.prod(header.dims) * 4 > MAX_PAYLOAD_BYTES:
        raise DataError(
            f"{path}: IDX header declares {shape} {header.dtype.name} values, {math.prod(header.dims) * 4:,} bytes as "
            f"float32, over the {MAX_PAYLOAD_BYTES:,}-byte limit; use a smaller data set (or the header is corrupt)"
        )
    if _is_gzip(path):
        bound = file_size * MAX_DEFLATE_RATIO
        if declared + header.header_bytes > bound:
            raise DataError(
                f"{path}: IDX header declares {shape} = {declared:,} bytes, more than a {file_size:,}-byte gzip "
                "file can hold; the header is corrupt or the file is truncated"
            )
    elif header.header_bytes + declared != file_size:
        raise DataError(
            f"{path}: IDX header declares {shape} {header.dtype.name} = {declared:,} payload bytes, but the file "
            f"has {file_size - header.header_bytes:,} after the header (truncated or extra bytes)"
        )


def read_idx_header(path: str | Path, *, limit: bool = True) -> IdxHeader:
    """The header of the IDX file at ``path`` (raw or ``.gz``), checked against the file's size (and the budget,
    unless not ``limit``)."""
    path = Path(path)
    with _open(path) as (f, size):
        return _read_header(f, path, size, limit)[0]


def _read_header(f: Any, path: Path, file_size: int, limit: bool = True) -> tuple[IdxHeader, bytes]:
    """Read, parse and size-check the header at the start of the open stream ``f``; also its raw bytes."""
    head = _read_exact(f, path, 4)
    if len(head) == 4 and head[:2] == b"\0\0":
        head += _read_exact(f, path, 4 * head[3])
    header = _parse_header(path, head)
    _check_size(path, header, file_size, limit)
    return header, head


def read_idx(path: str | Path, *, sha256: str | None = None) -> np.ndarray:
    """The array stored in the IDX file at ``path`` (raw, or gzip if the name ends in ``.gz``), native byte order.

    With ``sha256``, the hash of the *decompressed* file (header and payload) must equal it.
    Raises ``DataError`` naming the file for every malformed header, size mismatch or broken gzip stream.
    """
    path = Path(path)
    with _open(path) as (f, size):
        header, head = _read_header(f, path, size)
        declared = header.payload_bytes
        # One byte more than declared reveals trailing data (a gzip bomb stops there); a short read means end of
        # stream, where gzip has verified its CRC and length.
        payload = _read_exact(f, path, declared + 1)
    if len(payload) != declared:
        shape = "x".join(map(str, header.dims))
        what = "extra bytes after the data" if len(payload) > declared else f"only {len(payload):,} bytes"
        raise DataError(
            f"{path}: IDX header declares {shape} {header.dtype.name} = {declared:,} payload bytes, but the "
            f"decompressed file has {what} (truncated or corrupt)"
        )
    if sha256 is not None:
        digest = hashlib.sha256(head[: header.header_bytes])
        digest.update(payload)
        actual = digest.hexdigest()
        if actual != sha256.lower():
            raise DataError(
                f"{path}: sha256 of the decompressed content is {actual}, expected {sha256}; the file is corrupt "
                "or not the official one: delete it and load again"
            )
    arr = np.frombuffer(payload, dtype=header.dtype).reshape(header.dims)
    return arr.astype(header.dtype.newbyteorder("="))  # a writable copy in native byte order


def copy_idx_payload(path: str | Path, sink: BinaryIO | None, *, sha256: str | None = None) -> IdxHeader:
    """Stream the payload of the IDX file at ``path`` (decompressed if ``.gz``) into ``sink`` (or nowhere: only
    checked), :data:`_CHUNK` at a time, with :func:`read_idx`'s checks: never past the declared size (one byte more
    is refused: a gzip bomb stops there), a short stream refused, ``sha256`` of header and payload checked. No
    budget: a streamed file is never held whole. Returns the header."""
    path = Path(path)
    with _open(path) as (f, size):
        header, head = _read_header(f, path, size, limit=False)
        digest = hashlib.sha256(head[: header.header_bytes]) if sha256 is not None else None
        declared, got = header.payload_bytes, 0
        while got <= declared:
            chunk = _read_exact(f, path, min(_CHUNK, declared + 1 - got))
            if not chunk:
                break
            got += len(chunk)
            if got > declared:
                break
            if digest is not None:
                digest.update(chunk)
            if sink is not None:
                sink.write(chunk)
    if got != declared:
        shape = "x".join(map(str, header.dims))
        what = "extra bytes after the data" if got > declared else f"only {got:,} bytes"
        raise DataError(
            f"{path}: IDX header declares {shape} {header.dtype.name} = {declared:,} payload bytes, but the "
            f"decompressed file has {what} (truncated or corrupt)"
        )
    if digest is not None and (actual := digest.hexdigest()) != sha256.lower():
        raise DataError(
            f"{path}: sha256 of the decompressed content is {actual}, expected {sha256}; the file is corrupt "
            "or not the official one: delete it and load again"
        )
    return header


def idx_pair_labels(images_path: str | Path, labels_path: str | Path, class_names: list[str] | None,
                    labels_sha256: str | None = None, *,
                    limit: bool = True) -> tuple[IdxHeader, np.ndarray, list[str]]:
    """(image header, labels, class names) of an IDX pair, checked before any image is read: images (N, H, W)
    within the budget (unless not ``limit``), one integer label >= 0 per image, class names covering them."""
    images_path, labels_path = Path(images_path), Path(labels_path)
    img_header = read_idx_header(images_path, limit=limit)
    if len(img_header.dims) != 3:
        raise DataError(f"{images_path}: expected an IDX image file of shape (N, H, W), got dims {img_header.dims}")
    check_image_budget(images_path, img_header.dims, limit=limit)
    labels = read_idx(labels_path, sha256=labels_sha256)
    if labels.ndim != 1:
        raise DataError(f"{labels_path}: expected an IDX label file of shape (N,), got shape {labels.shape}")
    if labels.dtype.kind not in "iu":
        raise DataError(f"{labels_path}: labels must be integers, got {labels.dtype}")
    n = img_header.dims[0]
    if len(labels) != n:
        raise DataError(
            f"{labels_path}: {len(labels):,} labels but {images_path.name} holds {n:,} images; "
            "the two files must come from the same set"
        )
    if len(labels) and labels.min() < 0:
        raise DataError(f"{labels_path}: negative label {int(labels.min())}")
    names = class_names_for(labels_path, labels, None if class_names is None else list(class_names))
    return img_header, labels, names


def load_idx_pair(
    images_path: str | Path,
    labels_path: str | Path,
    class_names: list[str] | None = None,
    source: str = "",
    *,
    expected_sha256: tuple[str, str] | None = None,
) -> ImageSet:
    """Images (N, H, W) and labels (N,) from two IDX files as an ``ImageSet`` of shape (N, 1, H, W).

    uint8 pixels become float32 ``x / 255``. Label count and values are checked before the image payload
    is read. Without ``class_names``, classes are named ``"0" .. str(max label)``. ``expected_sha256`` is the
    (images, labels) pair of sha256 values of the decompressed files, checked when given.
    """
    img_sha, lbl_sha = expected_sha256 or (None, None)
    images_path = Path(images_path)
    _, labels, class_names = idx_pair_labels(images_path, labels_path, class_names, lbl_sha)
    raw = read_idx(images_path, sha256=img_sha)
    images = raw.astype(np.float32)
    if raw.dtype == np.uint8:
        images /= 255.0
    return ImageSet(images[:, None], labels.astype(np.int64), list(class_names), source or str(images_path))
