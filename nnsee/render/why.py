"""The "why this score" picture for one input: the image, then one signed map per class or per unit."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

from nnsee.render.colormap import symmetric_scale
from nnsee.render.tiles import grid, image_tile, weight_tile


def why_image(image: np.ndarray, maps: np.ndarray, captions: Sequence[str], title: str, upscale: int = 4,
              ncols: int = 6) -> Image.Image:
    """``image`` (C, H, W) in [0, 1] first, then ``maps`` (M, C, H, W) on one shared symmetric scale (stated)."""
    scale = symmetric_scale(maps)
    tiles = [image_tile(np.clip(image, 0, 1), upscale).convert("RGB")]
    tiles += [weight_tile(m, scale, upscale) for m in maps]
    return grid(tiles, ncols=min(ncols, len(tiles)), captions=["input", *captions], title=title,
                note=f"red raises the score, blue lowers it; shared scale ±{scale:.3g}")
