"""Decoding one encoded image, defensively: the guard shared by image folders and the live page's uploads.

* the pixel count is read from the header and refused over a cap before anything is decoded (a 20 kB PNG can
  declare gigapixels); Pillow's decompression-bomb warning is an error too;
* JPEGs are decoded at a reduced scale still at least ``size`` (``draft``); EXIF orientation is applied; only the
  first frame is used (animated GIF, multi-page TIFF);
* transparency is composited on white, 16-bit grey scaled by 1/65535, ``F`` clipped, CMYK/palette/1-bit converted,
  then L or RGB, centre-cropped and resized to ``size`` x ``size`` (``ImageOps.fit``, Lanczos): float32 (C, size,
  size) in [0, 1];
* every failure (unknown format, garbage, truncated data, a decoder error) is an :class:`UnusableImage` saying why.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps

#: The one allow-list of image formats nnsee decodes, everywhere (image folders, ``nnsee explain``, the live page):
#: Pillow's own decoders only, none that runs an outside program (EPS would start Ghostscript).
IMAGE_FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "GIF", "TIFF", "PPM")


class UnusableImage(ValueError):
    """Encoded data that cannot be used as an image (the message says why)."""


def decode_stream(fp: BinaryIO, size: int, grayscale: bool, max_pixels: int,
                  formats: Sequence[str] = IMAGE_FORMATS) -> np.ndarray:
    """Float32 (C, size, size) in [0, 1] from an open binary stream of one of ``formats`` (Pillow's names).
    Raises :class:`UnusableImage`."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(fp, formats=formats) as im:
                w, h = im.size
                if w * h > max_pixels or w <= 0 or h <= 0:
                    raise UnusableImage(
                        f"image declares {w}x{h} = {w * h / 1e6:.0f} megapixels, over the {max_pixels / 1e6:.0f} MP "
                        "limit (a decompression bomb?); not decoded"
                    )
                im.draft(None, (size, size))  # JPEG: decode at a reduced scale still >= size (no-op for others)
                ImageOps.exif_transpose(im, in_place=True)  # no copy of an upright photo (16 MP RGB: 48 MB)
                return _to_array(im, size, grayscale)
        except UnusableImage:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
            raise UnusableImage(f"rejected as a decompression bomb ({e})") from None
        except Image.UnidentifiedImageError:
            raise UnusableImage(f"not an image of a supported format ({', '.join(formats)})") from None
        except Exception as e:  # noqa: BLE001 - a damaged file can fail anywhere in a decoder
            raise UnusableImage(f"cannot decode the image ({type(e).__name__}: {e})") from None


def _flatten_alpha(im: Image.Image) -> Image.Image:
    """RGB with transparent pixels composited on white, if ``im`` has any transparency; else ``im``."""
    has_alpha = im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in im.info
    if not has_alpha:
        return im
    rgba = im.convert("RGBA")
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, rgba).convert("RGB")


def _to_array(im: Image.Image, size: int, grayscale: bool) -> np.ndarray:
    """Float32 (C, size, size) in [0, 1] from a loaded, upright image."""
    if im.mode.startswith("I") or im.mode == "F":  # 16/32-bit integer grey or float grey: keep precision
        a = np.asarray(im, dtype=np.float32)
        a = a / np.float32(65535.0) if im.mode.startswith("I") else a / np.float32(255.0)
        grey = Image.fromarray(np.clip(a, 0.0, 1.0).astype(np.float32), mode="F")
        out = np.asarray(ImageOps.fit(grey, (size, size), Image.Resampling.LANCZOS), dtype=np.float32)
        out = np.clip(out, 0.0, 1.0)[None]
        return out if grayscale else np.repeat(out, 3, axis=0)
    im = _flatten_alpha(im).convert("L" if grayscale else "RGB")
    out = np.asarray(ImageOps.fit(im, (size, size), Image.Resampling.LANCZOS), dtype=np.float32) / np.float32(255.0)
    return out[None] if grayscale else out.transpose(2, 0, 1)
