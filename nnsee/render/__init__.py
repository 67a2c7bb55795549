"""Rendering: arrays to pixels (PNG, data: URIs, GIF), matplotlib figures and inline SVG. Never trains or explains.

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
from nnsee.render.figures import (
    confusion_matrix_figure,
    figure_png,
    learning_curves,
    learning_curves_grid,
    outgoing_weights_figure,
    probabilities_figure,
    weights_grid_figure,
)
from nnsee.render.svg import bar_chart_svg, learning_curves_svg, line_chart_svg, sparkline_svg, xml_text
from nnsee.render.tiles import (
    MAX_GRID_TILES,
    TooManyTilesError,
    colorbar,
    grid,
    image_tile,
    mosaic,
    weight_tile,
    weight_tiles,
)
from nnsee.render.why import why_image

__all__ = [
    "mosaic",
    "learning_curves_svg",
    "line_chart_svg",
    "why_image",
    "CMAP_NAME",
    "MAX_GRID_TILES",
    "NAN_RGB",
    "TooManyTilesError",
    "animated_gif",
    "bar_chart_svg",
    "centre_rgb",
    "colorbar",
    "confusion_matrix_figure",
    "data_uri",
    "figure_png",
    "gray_to_rgb",
    "gray_to_uint8",
    "grid",
    "image_tile",
    "learning_curves",
    "learning_curves_grid",
    "outgoing_weights_figure",
    "png_bytes",
    "probabilities_figure",
    "rgb_signed_to_rgb",
    "save_gif",
    "save_png",
    "signed_lut",
    "signed_to_rgb",
    "sparkline_svg",
    "symmetric_scale",
    "weight_tile",
    "weight_tiles",
    "weights_grid_figure",
    "write_atomic",
    "xml_text",
]
