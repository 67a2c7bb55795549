"""Uploaded image bytes to the model's input, strictly: only the formats of ``IMAGE_FORMATS``, a pixel cap read
from the header before any decoding, and every failure a :class:`ImageRejected` (the server answers 400).

The guard and the conversion are those of image folders (:mod:`nnsee.data.image_decode`): transparency is
composited on white. An image with no contrast at
all (a fully transparent canvas, an all-black one) is *blank* (:func:`nnsee.methods.one_image.is_blank`, the rule
``nnsee explain`` uses too): the server says so instead of explaining it.
The page's canvas draws white strokes on black, like MNIST-style training data.
"""

from __future__ import annotations

import io

import numpy as np

from nnsee.data.image_decode import IMAGE_FORMATS, UnusableImage, decode_stream
from nnsee.methods.one_image import is_blank

__all__ = ["FORMATS", "MAX_PIXELS", "ImageRejected", "decode_bytes", "is_blank"]

#: Largest uploaded image, in pixels, checked from the header before decoding (a 4000 x 4000 photo fits).
MAX_PIXELS = 16_000_000
FORMATS = IMAGE_FORMATS


class ImageRejected(ValueError):
    """An upload that is not a usable image (the message says why)."""


def decode_bytes(data: bytes, size: int, grayscale: bool, resize: str = "square") -> np.ndarray:
    """Float32 (C, size, size) in [0, 1] from encoded image bytes, brought to ``size`` by the run's resize rule
    (:data:`~nnsee.data.image_decode.RESIZE_RULES`), or :class:`ImageRejected`."""
    if not data:
        raise ImageRejected("empty body: send the image as the request body")
    try:
        return decode_stream(io.BytesIO(data), size, grayscale, MAX_PIXELS, FORMATS, resize)
    except UnusableImage as e:
        raise ImageRejected(str(e)) from None
