"""Bring an in-memory ImageSet to a requested size and channel count (folders are decoded at that size instead).

Grey from RGB is ITU-R 601 luma, ``0.299 R + 0.587 G + 0.114 B`` (as Pillow's ``convert("L")``); RGB from grey
repeats the channel; a new size is a centre crop to square and a bilinear resize (``ImageOps.fit`` on float images).
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageOps

from nnsee.data.imageset import ImageSet
from nnsee.errors import DataError

_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def conformed_shape(shape: tuple[int, int, int], size: int | None, grayscale: bool | None) -> tuple[int, int, int]:
    """The (C, H, W) that :func:`conform_images` gives images of ``shape``."""
    c, h, w = shape
    c = 1 if grayscale is True else 3 if grayscale is False else c
    return (c, size, size) if size is not None else (c, h, w)


def conform_images(x: np.ndarray, size: int | None = None, grayscale: bool | None = None) -> np.ndarray:
    """Images (N, C, H, W) at ``size`` x ``size`` with 1 (``grayscale``) or 3 channels (rules in the module
    docstring); ``x`` itself where nothing changes. Every image is converted alone: a batch gives the same values as
    the whole set."""
    if grayscale is True and x.shape[1] == 3:  # elementwise float32 (no BLAS): the same rounding in any batch
        x = (x[:, 0] * _LUMA[0] + x[:, 1] * _LUMA[1] + x[:, 2] * _LUMA[2])[:, None].astype(np.float32)
    elif grayscale is False and x.shape[1] == 1:
        x = np.repeat(x, 3, axis=1)
    if size is not None:
        if size < 1:
            raise DataError(f"size must be a positive number of pixels, got {size}")
        if x.shape[2:] != (size, size):
            out = np.empty(x.shape[:2] + (size, size), dtype=np.float32)
            for i, img in enumerate(x):
                for c, plane in enumerate(img):
                    im = Image.fromarray(np.ascontiguousarray(plane, dtype=np.float32), mode="F")
                    out[i, c] = np.asarray(ImageOps.fit(im, (size, size), Image.Resampling.BILINEAR))
            x = out
    return x


def conform(data: ImageSet, size: int | None = None, grayscale: bool | None = None) -> ImageSet:
    """``data`` with images of ``size`` x ``size`` and 1 (``grayscale``) or 3 channels; unchanged where None. A
    streamed set stays streamed: each batch is converted as it is read."""
    if data.streamed:
        if conformed_shape(data.shape, size, grayscale) == data.shape:
            return data
        if size is not None and size < 1:
            raise DataError(f"size must be a positive number of pixels, got {size}")
        x = data.images.conformed(size, grayscale)
    else:
        x = conform_images(data.images, size, grayscale)
    if x is data.images:
        return data
    return ImageSet(x, data.labels, list(data.class_names), data.source, list(data.skipped))
