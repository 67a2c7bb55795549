"""Signed maps (contributions, attributions) as tiles on one symmetric ``RdBu_r`` scale, the report's convention:
``s = max |m|`` over every map drawn together, so they compare; channels are summed first (a map per image)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from nnsee.notebook.html import tile, tiles
from nnsee.render import image_tile, symmetric_scale, weight_tile


def summed(maps: np.ndarray) -> np.ndarray:
    """Maps (N, C, H, W) or (N, H, W) as (N, 1, H, W) in float64, channels summed."""
    m = np.asarray(maps, dtype=np.float64)
    return (m[:, None] if m.ndim == 3 else m).sum(axis=1, keepdims=True)


def signed_tiles(maps: np.ndarray, captions: Sequence[str], upscale: int, alt: str,
                 image: np.ndarray | None = None, scale: float | None = None) -> tuple[str, float]:
    """HTML of ``maps`` (N, C, H, W) or (N, H, W), channels summed, on one shared scale (``scale``, default
    ``max |m|``; returned too), after the input ``image`` (C, H, W) in [0, 1] when given."""
    m = summed(maps)
    scale = symmetric_scale(m) if scale is None else scale
    parts = [tile(image_tile(image, upscale), "the input image", "input")] if image is not None else []
    parts += [tile(weight_tile(one, scale, upscale), f"{alt} {i}", caption)
              for i, (one, caption) in enumerate(zip(m, captions, strict=True))]
    return tiles(parts), scale
