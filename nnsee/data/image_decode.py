"""Decoding one encoded image, defensively: the guard shared by image folders and the live page's uploads.

* the pixel count is read from the header and refused over a cap before anything is decoded (a 20 kB PNG can
  declare gigapixels); Pillow's decompression-bomb warning is an error too;
* EXIF orientation is applied; only the first frame is used (animated GIF, multi-page TIFF);
* transparency is composited on white, 16-bit grey scaled by 1/65535, ``F`` clipped, CMYK/palette/1-bit converted,
  then L or RGB, then brought to ``size`` x ``size`` by one of the :data:`RESIZE_RULES`: float32 (C, size, size) in
  [0, 1]:

  - ``square`` (nnsee's, the default): the largest centred square, resized to ``size`` (``ImageOps.fit``, Lanczos);
    JPEGs are decoded at a reduced scale still at least ``size`` (``draft``);
  - ``torchvision`` (``Resize(round(size * 256 / 224))`` then ``CenterCrop(size)``, the ImageNet evaluation
    convention): the shorter side to ``s = round(size * 256 / 224)`` and the longer to ``int(s * long / short)``
    (aspect kept; PIL bilinear, which is antialiased), then the ``size`` x ``size`` box of that resized ``w x h``
    image at ``(int(round((w - size) / 2)), int(round((h - size) / 2)))``; decoded at full scale, as torchvision
    does (past :data:`MAX_ASPECT` only the box is resampled);
* every failure (unknown format, garbage, truncated data, a decoder error) is an :class:`UnusableImage` saying why.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps

from nnsee.errors import not_one_of

#: The one allow-list of image formats nnsee decodes, everywhere (image folders, ``nnsee explain``, the live page):
#: Pillow's own decoders only, none that runs an outside program (EPS would start Ghostscript).
IMAGE_FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "GIF", "TIFF", "PPM")


#: The resize rules, by name (the choices of ``nnsee adopt --resize``); the first is the default.
RESIZE_RULES = ("square", "torchvision")
#: torchvision's ImageNet evaluation ratio: ``Resize(256)`` before ``CenterCrop(224)``.
TORCHVISION_RATIO = 256 / 224
#: Longest side over shorter side up to which the torchvision rule resizes the whole image before cropping; past it
#: only the crop's box is resampled (the same filter and scale), so a sliver of a photo cannot take gigabytes.
MAX_ASPECT = 16


class UnusableImage(ValueError):
    """Encoded data that cannot be used as an image (the message says why)."""


def check_resize(resize: object, what: str = "the resize rule", error: type[Exception] = ValueError) -> str:
    """``resize`` if it names one of :data:`RESIZE_RULES`, else ``error`` (one line naming ``what`` and the rules)."""
    if not isinstance(resize, str) or resize not in RESIZE_RULES:
        raise error(not_one_of(what, resize, RESIZE_RULES))
    return resize


@contextmanager
def _guarded(fp: BinaryIO, max_pixels: int, formats: Sequence[str]) -> Iterator[Image.Image]:
    """``fp`` opened by Pillow (header only) with its pixel count checked; any failure in the body or the opening
    becomes an :class:`UnusableImage` saying why."""
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
                yield im
        except UnusableImage:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
            raise UnusableImage(f"rejected as a decompression bomb ({e})") from None
        except Image.UnidentifiedImageError:
            raise UnusableImage(f"not an image of a supported format ({', '.join(formats)})") from None
        except Exception as e:  # noqa: BLE001 - a damaged file can fail anywhere in a decoder
            raise UnusableImage(f"cannot decode the image ({type(e).__name__}: {e})") from None


def check_header(fp: BinaryIO, max_pixels: int, formats: Sequence[str] = IMAGE_FORMATS) -> None:
    """Raise :class:`UnusableImage` if ``fp`` is not an image of ``formats`` or declares more than ``max_pixels``,
    from its header alone (the checks :func:`decode_stream` makes before decoding, with the same reasons)."""
    with _guarded(fp, max_pixels, formats):
        pass


def decode_stream(fp: BinaryIO, size: int, grayscale: bool, max_pixels: int,
                  formats: Sequence[str] = IMAGE_FORMATS, resize: str = "square") -> np.ndarray:
    """Float32 (C, size, size) in [0, 1] from an open binary stream of one of ``formats`` (Pillow's names), brought
    to ``size`` by the rule ``resize`` (:data:`RESIZE_RULES`). Raises :class:`UnusableImage`."""
    check_resize(resize)
    with _guarded(fp, max_pixels, formats) as im:
        if resize == "square":
            im.draft(None, (size, size))  # JPEG: decode at a reduced scale still >= size (others: no-op)
        ImageOps.exif_transpose(im, in_place=True)  # no copy of an upright photo (16 MP RGB: 48 MB)
        return _to_array(im, size, grayscale, resize)


def _flatten_alpha(im: Image.Image) -> Image.Image:
    """RGB with transparent pixels composited on white, if ``im`` has any transparency; else ``im``."""
    has_alpha = im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in im.info
    if not has_alpha:
        return im
    rgba = im.convert("RGBA")
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, rgba).convert("RGB")


def resized(im: Image.Image, size: int, resize: str = "square") -> Image.Image:
    """``im`` brought to ``size`` x ``size`` by the rule ``resize`` (rules in the module docstring)."""
    if resize == "square":
        return ImageOps.fit(im, (size, size), Image.Resampling.LANCZOS)
    w, h = im.size
    short = round(size * TORCHVISION_RATIO)
    new_w, new_h = (short, int(short * h / w)) if w <= h else (int(short * w / h), short)
    left, top = int(round((new_w - size) / 2.0)), int(round((new_h - size) / 2.0))
    if new_w * new_h > MAX_ASPECT * short * short:  # a sliver (40,000,000 x 1 px): resample only the crop's box
        sx, sy = w / new_w, h / new_h
        box = (left * sx, top * sy, (left + size) * sx, (top + size) * sy)
        return im.resize((size, size), Image.Resampling.BILINEAR, box=box)
    if (new_w, new_h) != (w, h):
        im = im.resize((new_w, new_h), Image.Resampling.BILINEAR)
    return im.crop((left, top, left + size, top + size))


def _to_array(im: Image.Image, size: int, grayscale: bool, resize: str = "square") -> np.ndarray:
    """Float32 (C, size, size) in [0, 1] from a loaded, upright image."""
    if im.mode.startswith("I") or im.mode == "F":  # 16/32-bit integer grey or float grey: keep precision
        a = np.asarray(im, dtype=np.float32)
        a = a / np.float32(65535.0) if im.mode.startswith("I") else a / np.float32(255.0)
        grey = Image.fromarray(np.clip(a, 0.0, 1.0).astype(np.float32), mode="F")
        out = np.asarray(resized(grey, size, resize), dtype=np.float32)
        out = np.clip(out, 0.0, 1.0)[None]
        return out if grayscale else np.repeat(out, 3, axis=0)
    im = _flatten_alpha(im).convert("L" if grayscale else "RGB")
    out = np.asarray(resized(im, size, resize), dtype=np.float32) / np.float32(255.0)
    return out[None] if grayscale else out.transpose(2, 0, 1)
