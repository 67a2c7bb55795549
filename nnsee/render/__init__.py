"""Rendering: arrays to pixels (PNG, data: URIs, GIF). Never trains or explains.

Importing this package is cheap: matplotlib is imported only inside the functions that need it.
"""

from __future__ import annotations

from nnsee.render.colormap import (
    CMAP_NAME,
    NAN_RGB,
    centre_rgb,
    gray_to_rgb,
    gray_to_uint8,
    rgb_signed_to_rgb,
    signed_lut,
    signed_to_rgb,
    symmetric_scale,
)
from nnsee.render.encode import animated_gif, data_uri, png_bytes, save_gif, save_png, write_atomic
from nnsee.render.tiles import (
    MAX_GRID_TILES,
    TooManyTilesError,
    colorbar,
    grid,
    image_tile,
    weight_tile,
    weight_tiles,
)

__all__ = [
    "CMAP_NAME",
    "MAX_GRID_TILES",
    "NAN_RGB",
    "TooManyTilesError",
    "animated_gif",
    "centre_rgb",
    "colorbar",
    "data_uri",
    "gray_to_rgb",
    "gray_to_uint8",
    "grid",
    "image_tile",
    "png_bytes",
    "rgb_signed_to_rgb",
    "save_gif",
    "save_png",
    "signed_lut",
    "signed_to_rgb",
    "symmetric_scale",
    "weight_tile",
    "weight_tiles",
    "write_atomic",
]
