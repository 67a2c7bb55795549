"""An ``.npz`` file of images ``x`` and integer labels ``y`` (optional ``class_names``), loaded without pickle.

Layout rule for ``x``: (N, H, W) is one channel; for (N, A, B, C), channels-first (N, C, H, W) if axis 1 is 1 or 3,
else channels-last (N, H, W, C) if the last axis is 1 or 3, else an error. uint8 pixels become ``x / 255``; other
data is taken as already in [0, 1], with a warning if its maximum is over 1.5 (it looks like unscaled 0-255 data).
"""

from __future__ import annotations

import warnings
import zipfile
from pathlib import Path

import numpy as np

from nnsee.data.imageset import ImageSet
from nnsee.errors import DataError

_X_KEYS = ("x", "X", "images")
_Y_KEYS = ("y", "Y", "labels")


def _layout(path: Path, x: np.ndarray) -> np.ndarray:
    if x.ndim == 3:
        return x[:, None]
    if x.ndim == 4 and x.shape[1] in (1, 3):
        return x
    if x.ndim == 4 and x.shape[3] in (1, 3):
        return x.transpose(0, 3, 1, 2)
    raise DataError(f"{path}: x has shape {x.shape}; expected (N, H, W), (N, C, H, W) or (N, H, W, C) with C = 1 or 3")


def load_npz(path: str | Path) -> ImageSet:
    """Images and labels from the ``.npz`` at ``path`` as float32 (N, C, H, W) (layout rule in the module docstring).

    Raises ``DataError`` naming the file for missing arrays, bad shapes, non-integer labels, NaN/inf pixels.
    """
    path = Path(path).expanduser()
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise DataError(f"{path}: cannot read as .npz without pickle ({type(e).__name__}: {e})") from e
    x_key = next((k for k in _X_KEYS if k in arrays), None)
    y_key = next((k for k in _Y_KEYS if k in arrays), None)
    if x_key is None or y_key is None:
        raise DataError(f"{path}: expected arrays 'x' (images) and 'y' (labels), found {sorted(arrays)}")
    x, y = arrays[x_key], arrays[y_key]
    if x.dtype.kind not in "uifb":
        raise DataError(f"{path}: x must hold numbers, got dtype {x.dtype}")
    x = _layout(path, x)
    if y.ndim != 1 or len(y) != len(x):
        raise DataError(f"{path}: y must have shape ({len(x)},) (one label per image), got {y.shape}")
    if y.dtype.kind == "f" and np.all(np.isfinite(y)) and np.array_equal(y, np.round(y)):
        y = y.astype(np.int64)
    if y.dtype.kind not in "iu":
        raise DataError(f"{path}: y must hold integer class indices, got dtype {y.dtype}")
    if len(y) and y.min() < 0:
        raise DataError(f"{path}: y holds a negative label ({int(y.min())}); labels are class indices 0..K-1")

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

    k = int(y.max()) + 1 if len(y) else 0
    if "class_names" in arrays:
        names = [str(n) for n in np.asarray(arrays["class_names"]).ravel()]
        if len(names) < k:
            raise DataError(f"{path}: y holds label {k - 1} but class_names has only {len(names)} names")
    else:
        names = [str(i) for i in range(k)]
    return ImageSet(images, y.astype(np.int64), names, str(path))
