"""An ``.npz`` file of images ``x`` and integer labels ``y`` (optional ``class_names``), loaded without pickle.

Layout rule for ``x``: (N, H, W) is one channel; for (N, A, B, C), channels-first (N, C, H, W) if axis 1 is 1 or 3,
else channels-last (N, H, W, C) if the last axis is 1 or 3, else an error. uint8 pixels become ``x / 255``; other
data is taken as already in [0, 1], with a warning if its maximum is over 1.5 (it looks like unscaled 0-255 data).

Sizes are checked before anything of their size exists: the file must be a regular file; each array's npy header
(shape x itemsize) must equal its zip entry's declared size, which a deflated entry cannot exceed 1,100 times its
compressed size; ``x`` as float32 must fit :data:`MAX_IMAGE_BYTES`; the labels set the class count only within
:func:`class_names_for`'s bounds (this module holds the caps the IDX reader and the model registry share).
"""

from __future__ import annotations

import math
import os
import warnings
import zipfile
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from numpy.lib import format as npy

from nnsee.data.imageset import ImageSet
from nnsee.errors import DataError, NnseeError
from nnsee.io import open_regular

_X_KEYS = ("x", "X", "images")
_Y_KEYS = ("y", "Y", "labels")

#: Most classes a data set may have: the two confusion matrices of a 2,000-class run fill about 16 MB of run.json.
MAX_CLASSES = 2000
#: Largest image set (float32, as trained on) a loader builds: 4 GiB, e.g. 1.4 million 28x28 images.
MAX_IMAGE_BYTES = 4 << 30
#: Deflate cannot expand data by more than ~1032x: a declared size beyond this many times the compressed one is a lie.
MAX_DEFLATE_RATIO = 1100


def check_image_budget(path: Path, shape: tuple[int, ...], *, limit: bool = True) -> None:
    """Refuse images of ``shape`` (as declared) whose float32 copy would pass :data:`MAX_IMAGE_BYTES` (unless not
    ``limit``: streamed sets are never held whole), or that hold no image or an empty one, before they are read."""
    dims = "x".join(map(str, shape))
    if not shape or shape[0] == 0:
        raise DataError(f"{path}: holds no images (shape {dims}); give a data set with images in it")
    if 0 in shape[1:]:
        raise DataError(f"{path}: its images are empty (shape {dims}); each image needs at least 1x1 pixels")
    need = math.prod(shape) * 4
    if limit and need > MAX_IMAGE_BYTES:
        raise DataError(
            f"{path}: declares images of shape {dims}, {need:,} bytes as float32, more than the {MAX_IMAGE_BYTES:,} "
            "nnsee loads; use fewer or smaller images"
        )


def class_names_for(path: Path, labels: np.ndarray, names: list[str] | None) -> list[str]:
    """The class names for integer ``labels`` (already checked non-negative): ``names`` when given (at most
    :data:`MAX_CLASSES`, covering every label; ImageSet refuses repeated names), else ``"0" .. "K-1"`` with
    ``K = max label + 1``, which must be at most the number of labels and :data:`MAX_CLASSES` (a label of 10**7 is
    a damaged file, not 10 million classes)."""
    top = int(labels.max()) if len(labels) else -1
    if names is not None:
        if len(names) > MAX_CLASSES:
            raise DataError(f"{path}: class_names lists {len(names):,} classes, more than the {MAX_CLASSES:,} nnsee "
                            "handles")
        if top >= len(names):
            raise DataError(f"{path}: holds label {top} but class_names has only {len(names)} names")
        return list(names)
    k = top + 1
    if k > min(len(labels), MAX_CLASSES):
        raise DataError(
            f"{path}: holds label {top:,}, so {k:,} classes, but there are {len(labels):,} labels "
            f"(and nnsee handles at most {MAX_CLASSES:,} classes); labels must be class indices 0..K-1, or give "
            "class_names"
        )
    return [str(i) for i in range(k)]


def _layout(path: Path, x: np.ndarray) -> np.ndarray:
    if x.ndim == 3:
        return x[:, None]
    if x.ndim == 4 and x.shape[1] in (1, 3):
        return x
    if x.ndim == 4 and x.shape[3] in (1, 3):
        return x.transpose(0, 3, 1, 2)
    raise DataError(f"{path}: x has shape {x.shape}; expected (N, H, W), (N, C, H, W) or (N, H, W, C) with C = 1 or 3")


def _declared(path: Path, f: BinaryIO, size: int) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """Each array's (shape, dtype) from its npy header, checked against its zip entry's sizes and the file's
    ``size``; nothing else read."""
    found: dict[str, tuple[tuple[int, ...], np.dtype]] = {}
    with zipfile.ZipFile(f) as z:
        for info in z.infolist():
            if not info.filename.endswith(".npy"):
                continue
            name = info.filename[:-4]
            stored = info.compress_type == zipfile.ZIP_STORED
            if (info.compress_size > size or (stored and info.file_size != info.compress_size)
                    or info.file_size > info.compress_size * MAX_DEFLATE_RATIO):
                raise DataError(f"{path}: array {name!r} declares {info.file_size:,} bytes from {info.compress_size:,}"
                                f" {'stored' if stored else 'compressed'} in a file of {size:,}, which cannot be; the "
                                "file is damaged")
            with z.open(info) as member:
                version = npy.read_magic(member)
                reader = npy.read_array_header_1_0 if version == (1, 0) else npy.read_array_header_2_0
                shape, _, dtype = reader(member)
                header = member.tell() if hasattr(member, "tell") else 0
            if dtype.hasobject:
                raise DataError(f"{path}: cannot read as .npz without pickle: array {name!r} holds Python objects")
            if header + math.prod(shape) * dtype.itemsize != info.file_size:
                raise DataError(f"{path}: array {name!r} declares shape {shape} of {dtype}, which does not match its "
                                f"{info.file_size:,} bytes; the file is damaged")
            found[name] = (tuple(shape), dtype)
    return found


def _read_arrays(path: Path) -> dict[str, np.ndarray]:
    try:
        with open_regular(path, "an .npz data file", error=DataError) as f:
            declared = _declared(path, f, os.fstat(f.fileno()).st_size)
            x_key = next((k for k in _X_KEYS if k in declared), None)
            if x_key is not None:
                check_image_budget(path, declared[x_key][0])
            if "class_names" in declared and math.prod(declared["class_names"][0]) > MAX_CLASSES:
                raise DataError(f"{path}: class_names lists {math.prod(declared['class_names'][0]):,} classes, more "
                                f"than the {MAX_CLASSES:,} nnsee handles")
            f.seek(0)
            with np.load(f, allow_pickle=False) as z:
                return {k: z[k] for k in z.files}
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except NnseeError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise DataError(f"{path}: cannot read as .npz without pickle ({type(e).__name__}: {e})") from e


def checked_labels(path: Path, y: np.ndarray, n: int) -> np.ndarray:
    """``y`` as integer class indices, one per image of ``n`` (whole floats accepted), none negative; else a
    one-line DataError."""
    if y.ndim != 1 or len(y) != n:
        raise DataError(f"{path}: y must have shape ({n},) (one label per image), got {y.shape}")
    if y.dtype.kind == "f" and np.all(np.isfinite(y)) and np.array_equal(y, np.round(y)):
        y = y.astype(np.int64)
    if y.dtype.kind not in "iu":
        raise DataError(f"{path}: y must hold integer class indices, got dtype {y.dtype}")
    if len(y) and y.min() < 0:
        raise DataError(f"{path}: y holds a negative label ({int(y.min())}); labels are class indices 0..K-1")
    return y


def load_npz(path: str | Path) -> ImageSet:
    """Images and labels from the ``.npz`` at ``path`` as float32 (N, C, H, W) (layout rule in the module docstring).

    Raises ``DataError`` naming the file for missing arrays, bad shapes, non-integer labels, NaN/inf pixels, and
    for sizes and labels outside the module docstring's bounds.
    """
    path = Path(path).expanduser()
    arrays = _read_arrays(path)
    x_key = next((k for k in _X_KEYS if k in arrays), None)
    y_key = next((k for k in _Y_KEYS if k in arrays), None)
    if x_key is None or y_key is None:
        raise DataError(f"{path}: expected arrays 'x' (images) and 'y' (labels), found {sorted(arrays)}")
    x, y = arrays[x_key], arrays[y_key]
    if x.dtype.kind not in "uifb":
        raise DataError(f"{path}: x must hold numbers, got dtype {x.dtype}")
    x = _layout(path, x)
    check_image_budget(path, x.shape)
    y = checked_labels(path, y, len(x))
    given: Any = arrays.get("class_names")
    names = class_names_for(path, y, None if given is None else [str(n) for n in np.asarray(given).ravel()])

    if x.dtype == np.uint8:
        images = x.astype(np.float32) / np.float32(255.0)
    else:
        images = x.astype(np.float32)
        bad = int(images.size - np.count_nonzero(np.isfinite(images)))
        if bad:
            raise DataError(f"{path}: x holds {bad:,} NaN or infinite values; clean the data first")
        if images.size and float(images.max()) > 1.5:
            warnings.warn(
                f"{path}: pixel values reach {float(images.max()):g}: the data looks unscaled (0-255); "
                "nnsee expects [0, 1]: divide x by 255 (or store it as uint8)",
                stacklevel=2,
            )
    return ImageSet(images, y.astype(np.int64), names, str(path))
