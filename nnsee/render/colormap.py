"""Arrays to RGB pixels: a diverging lookup table for signed maps, grayscale, and RGB weights.

The drawing conventions: signed values use matplotlib's ``RdBu_r`` (diverging, colour-blind safe) centred at 0 with a
symmetric scale; 0 maps to the map's neutral centre (so all-zero weights are mid-grey, never full blue); a scale of 0
or a non-finite scale renders everything as 0; NaN renders as :data:`NAN_RGB` (one marked pixel, never a blank map);
+inf and -inf render as the extremes.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

import numpy as np

#: Colour of a NaN pixel: bright green, absent from ``RdBu_r`` and from grayscale, so it stands out.
NAN_RGB: tuple[int, int, int] = (0, 255, 0)

#: Name of the diverging matplotlib colormap used for signed values.
CMAP_NAME = "RdBu_r"

LUT_SIZE = 256


@lru_cache(maxsize=1)
def signed_lut() -> np.ndarray:
    """The ``RdBu_r`` lookup table as a read-only ``(256, 3)`` uint8 array (computed once, on first use)."""
    from matplotlib import colormaps

    rgba = colormaps[CMAP_NAME].resampled(LUT_SIZE)(np.linspace(0.0, 1.0, LUT_SIZE))
    lut = np.round(rgba[:, :3] * 255.0).astype(np.uint8)
    lut.setflags(write=False)
    return lut


def centre_rgb() -> tuple[int, int, int]:
    """The colour value 0 renders as (the LUT entry :func:`signed_to_rgb` uses for 0)."""
    r, g, b = signed_lut()[_index(np.zeros(1))[0]]
    return int(r), int(g), int(b)


def _usable_scale(scale: float) -> float:
    """``scale`` as a positive float, or 0.0 when it is 0, negative zero, NaN or infinite (meaning: all zero)."""
    try:
        s = abs(float(scale))
    except (TypeError, ValueError):
        return 0.0
    return s if np.isfinite(s) and s > 0.0 else 0.0


def _normalized(values: np.ndarray, scale: float) -> np.ndarray:
    """``clip(v / scale, -1, 1)`` as float64; NaN stays NaN, ±inf becomes ±1, and scale 0 gives 0 for finite v."""
    v = np.asarray(values, dtype=np.float64)
    s = _usable_scale(scale)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        # scale 0: finite -> 0, while ±inf stays ±inf and is clipped to the extremes
        t = np.where(np.isfinite(v), 0.0, v) if s == 0.0 else v / s
        return np.clip(t, -1.0, 1.0)


def _index(t: np.ndarray) -> np.ndarray:
    """LUT index of normalized values in [-1, 1] (NaN maps to the centre; callers mark it afterwards)."""
    t = np.nan_to_num(t, nan=0.0)
    # -1 -> 0, 0 -> 128 (round half up of 127.5), +1 -> 255
    return np.floor((t + 1.0) * 0.5 * (LUT_SIZE - 1) + 0.5).astype(np.intp)


def signed_to_rgb(values: np.ndarray, scale: float) -> np.ndarray:
    """Map signed ``values`` of shape (H, W) to a (H, W, 3) uint8 image with ``RdBu_r``, centred at 0.

    Each value v takes the colour of ``clip(v / scale, -1, 1)``; see the module docstring for 0, NaN and ±inf.
    """
    v = np.asarray(values)
    if v.ndim != 2:
        raise ValueError(f"signed_to_rgb expects a 2-D (H, W) array, got shape {v.shape}")
    t = _normalized(v, scale)
    rgb = signed_lut()[_index(t)]
    nan = np.isnan(t)
    if nan.any():
        rgb[nan] = NAN_RGB
    return rgb


def gray_to_rgb(values: np.ndarray, vmin: float = 0.0, vmax: float = 1.0) -> np.ndarray:
    """Map (H, W) values in [vmin, vmax] to a (H, W, 3) uint8 gray image (clipped; NaN marked as :data:`NAN_RGB`)."""
    g = gray_to_uint8(values, vmin, vmax)
    rgb = np.repeat(g[..., None], 3, axis=-1)
    nan = np.isnan(np.asarray(values, dtype=np.float64))
    if nan.any():
        rgb[nan] = NAN_RGB
    return rgb


def gray_to_uint8(values: np.ndarray, vmin: float = 0.0, vmax: float = 1.0) -> np.ndarray:
    """Map values in [vmin, vmax] to uint8 0..255 of the same shape (clipped; NaN -> 0; vmax <= vmin -> all 0)."""
    v = np.asarray(values, dtype=np.float64)
    span = float(vmax) - float(vmin)
    with np.errstate(invalid="ignore", over="ignore"):
        t = (v - float(vmin)) / span if np.isfinite(span) and span > 0 else np.zeros_like(v)
    t = np.nan_to_num(np.clip(t, 0.0, 1.0), nan=0.0)
    return np.floor(t * 255.0 + 0.5).astype(np.uint8)


def rgb_signed_to_rgb(values: np.ndarray, scale: float) -> np.ndarray:
    """Map signed RGB weights (3, H, W) to a (H, W, 3) uint8 colour image: ``0.5 + 0.5 * v / scale`` per channel.

    RGB weights render as colour images (not with the diverging map): 0 is mid-grey, a weight that favours red
    looks red. Values are clipped; NaN marks the whole pixel as :data:`NAN_RGB`; scale 0 renders mid-grey.
    """
    v = np.asarray(values)
    if v.ndim != 3 or v.shape[0] != 3:
        raise ValueError(f"rgb_signed_to_rgb expects a (3, H, W) array, got shape {v.shape}")
    t = _normalized(v, scale)
    u = np.nan_to_num(0.5 + 0.5 * t, nan=0.5)
    rgb = np.floor(np.moveaxis(u, 0, -1) * 255.0 + 0.5).astype(np.uint8)
    nan = np.isnan(t).any(axis=0)
    if nan.any():
        rgb[nan] = NAN_RGB
    return rgb


def symmetric_scale(arrays: np.ndarray | Iterable[np.ndarray]) -> float:
    """The largest absolute finite value over one array or several (0.0 when there is none)."""
    if isinstance(arrays, np.ndarray):
        arrays = [arrays]
    best = 0.0
    for a in arrays:
        a = np.asarray(a, dtype=np.float64)
        if a.size == 0:
            continue
        finite = a[np.isfinite(a)]
        if finite.size:
            best = max(best, float(np.abs(finite).max()))
    return best
