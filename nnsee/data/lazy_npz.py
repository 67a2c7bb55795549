"""An ``.npz`` of images ``x`` and labels ``y`` as a streamed ImageSet: labels read whole, images by position.

The same checks and conversions as :func:`nnsee.data.npz.load_npz` (layout rule, uint8 ``/ 255``, labels, class
names), less the budget. ``x`` stored uncompressed is read at its offset inside the zip (its local header and npy
header skipped); a deflated ``x`` is decompressed once, never past its declared size, into the stream cache
(:mod:`nnsee.data.lazy_array`). An ``x`` that is not uint8 is scanned once, chunk by chunk, for NaN and infinite
values (refused) and for values over 1.5 (a warning), as ``load_npz`` checks the whole array.
"""

from __future__ import annotations

import math
import os
import struct
import warnings
import zipfile
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from numpy.lib import format as npy

from nnsee.data.imageset import ImageSet
from nnsee.data.lazy import LazyImages
from nnsee.data.lazy_array import ArrayFileSource, cached
from nnsee.data.npz import (
    _X_KEYS,
    _Y_KEYS,
    MAX_CLASSES,
    _declared,
    check_image_budget,
    checked_labels,
    class_names_for,
)
from nnsee.errors import DataError, NnseeError
from nnsee.io import open_regular

_LOCAL_HEADER = struct.Struct("<4s5H3L2H")  # a zip local file header: 30 bytes before the name and extra field
_COPY = 1 << 20


def _npy_header(f: BinaryIO, path: Path, name: str) -> tuple[tuple[int, ...], bool, np.dtype]:
    version = npy.read_magic(f)
    reader = npy.read_array_header_1_0 if version == (1, 0) else npy.read_array_header_2_0
    shape, fortran, dtype = reader(f)
    if fortran and len(shape) > 1:
        raise DataError(f"{path}: array {name!r} is stored in Fortran order, which cannot be read image by image; "
                        f"save it again with np.savez(..., {name}=np.ascontiguousarray({name})), or load it whole "
                        "(--no-stream)")
    return tuple(shape), bool(fortran), dtype


def _x_location(path: Path, f: BinaryIO, z: zipfile.ZipFile, name: str) -> tuple[Path, int]:
    """(file, offset of the first value) of member ``name`` (``x.npy``): in place when stored, else in the cache."""
    info = z.getinfo(name)
    key = name[:-4]
    if info.compress_type == zipfile.ZIP_STORED:
        f.seek(info.header_offset)
        fields = _LOCAL_HEADER.unpack(f.read(_LOCAL_HEADER.size))
        start = info.header_offset + _LOCAL_HEADER.size + fields[9] + fields[10]
        f.seek(start)
        _npy_header(f, path, key)
        return path, f.tell()

    def fill(out: BinaryIO) -> None:
        left = info.file_size
        with z.open(info) as member:
            while chunk := member.read(min(_COPY, left + 1)):
                left -= len(chunk)
                if left < 0:
                    raise DataError(f"{path}: array {key!r} holds more than its declared {info.file_size:,} bytes; "
                                    "the file is damaged")
                out.write(chunk)
        if left:
            raise DataError(f"{path}: array {key!r} ended {left:,} bytes before its declared size; the file is "
                            "damaged")

    copy = cached(path, f"npz:{name}", info.file_size, fill)
    with open(copy, "rb") as c:
        _npy_header(c, path, key)
        return copy, c.tell()


def _layout(path: Path, shape: tuple[int, ...]) -> str:
    if len(shape) == 3:
        return "nhw"
    if len(shape) == 4 and shape[1] in (1, 3):
        return "nchw"
    if len(shape) == 4 and shape[3] in (1, 3):
        return "nhwc"
    raise DataError(f"{path}: x has shape {shape}; expected (N, H, W), (N, C, H, W) or (N, H, W, C) with C = 1 or 3")


def _scan_values(path: Path, images: LazyImages) -> None:
    """Refuse NaN or infinite pixels, warn of values over 1.5 (unscaled 0-255 data), as load_npz does."""
    bad, top = 0, -math.inf
    for x, _, _ in images.chunks():
        bad += int(x.size - np.count_nonzero(np.isfinite(x)))
        if x.size:
            top = max(top, float(x.max()))
    if bad:
        raise DataError(f"{path}: x holds {bad:,} NaN or infinite values; clean the data first")
    if top > 1.5:
        warnings.warn(f"{path}: pixel values reach {top:g}: the data looks unscaled (0-255); nnsee expects [0, 1]: "
                      "divide x by 255 (or store it as uint8)", stacklevel=3)


def lazy_npz(path: str | Path, *, max_memory: int | None = None) -> ImageSet:
    """The ``.npz`` at ``path`` as a streamed ``ImageSet`` (rules of :func:`~nnsee.data.npz.load_npz`)."""
    path = Path(path).expanduser()
    try:
        with open_regular(path, "an .npz data file", error=DataError) as f:
            declared = _declared(path, f, os.fstat(f.fileno()).st_size)
            x_key = next((k for k in _X_KEYS if k in declared), None)
            y_key = next((k for k in _Y_KEYS if k in declared), None)
            if x_key is None or y_key is None:
                raise DataError(f"{path}: expected arrays 'x' (images) and 'y' (labels), found {sorted(declared)}")
            shape, dtype = declared[x_key]
            if "class_names" in declared and math.prod(declared["class_names"][0]) > MAX_CLASSES:
                raise DataError(f"{path}: class_names lists {math.prod(declared['class_names'][0]):,} classes, more "
                                f"than the {MAX_CLASSES:,} nnsee handles")
            if dtype.kind not in "uifb":
                raise DataError(f"{path}: x must hold numbers, got dtype {dtype}")
            layout = _layout(path, shape)
            item = shape[1:]
            check_image_budget(path, (shape[0], 1, *item) if layout == "nhw" else shape, limit=False)
            f.seek(0)
            with zipfile.ZipFile(f) as z:
                where, offset = _x_location(path, f, z, f"{x_key}.npy")
            f.seek(0)
            with np.load(f, allow_pickle=False) as arrays:
                y = arrays[y_key]
                given: Any = arrays["class_names"] if "class_names" in arrays.files else None
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except NnseeError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, struct.error) as e:
        raise DataError(f"{path}: cannot read as .npz without pickle ({type(e).__name__}: {e})") from e
    n = shape[0]
    y = checked_labels(path, y, n)
    names = class_names_for(path, y, None if given is None else [str(v) for v in np.asarray(given).ravel()])
    images = LazyImages(ArrayFileSource(where, offset, n, dtype, item, layout, str(path)), max_memory=max_memory)
    if dtype != np.uint8:
        _scan_values(path, images)
    return ImageSet(images, y.astype(np.int64), names, str(path))
