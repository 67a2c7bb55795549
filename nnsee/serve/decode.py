"""Uploaded image bytes to the model's input, strictly: only PNG/JPEG/WebP/BMP, a pixel cap read from the header
before any decoding, and every failure a :class:`ImageRejected` (the server answers 400).

Transparency is composited on white, as for image folders (``nnsee.data.folder``). An image with no contrast at
all (a fully transparent canvas, an all-black one) is *blank*: the server says so instead of explaining it.
The page's canvas draws white strokes on black, like MNIST-style training data.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image, ImageOps

from nnsee.data.folder import _to_array

#: Largest uploaded image, in pixels, checked from the header before decoding (a 4000 x 4000 photo fits).
MAX_PIXELS = 16_000_000
FORMATS = ("PNG", "JPEG", "WEBP", "BMP")
#: Below this spread (max - min, in [0, 1]) an image is blank.
BLANK_SPREAD = 1e-3


class ImageRejected(ValueError):
    """An upload that is not a usable image (the message says why)."""


def decode_bytes(data: bytes, size: int, grayscale: bool) -> np.ndarray:
    """Float32 (C, size, size) in [0, 1] from encoded image bytes, or :class:`ImageRejected`."""
    if not data:
        raise ImageRejected("empty body: send the image as the request body")
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data), formats=FORMATS) as im:
                w, h = im.size
                if w * h > MAX_PIXELS or w <= 0 or h <= 0:
                    raise ImageRejected(f"image declares {w}x{h} pixels, over the {MAX_PIXELS:,} pixel limit")
                im.draft(None, (size, size))
                upright = ImageOps.exif_transpose(im)
                return _to_array(upright, size, grayscale)
        except ImageRejected:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
            raise ImageRejected(f"rejected as a decompression bomb ({e})") from None
        except Image.UnidentifiedImageError:
            raise ImageRejected(f"not an image of a supported format ({', '.join(FORMATS)})") from None
        except Exception as e:  # noqa: BLE001 - a damaged image can fail anywhere in a decoder
            raise ImageRejected(f"cannot decode the image ({type(e).__name__}: {e})") from None


def is_blank(image: np.ndarray) -> bool:
    """True for an image with no contrast (nothing drawn)."""
    return bool(image.size == 0 or float(image.max() - image.min()) < BLANK_SPREAD)
