"""Class templates (or any signed weight images): one tile per class on the report's diverging map.

``RdBu_r`` centred at 0 (red positive, blue negative, white 0) with one symmetric scale ``s = max |w|`` over every
tile by default, so the tiles compare (``shared=False``: each its own); the scale is printed and drawn as a bar.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from nnsee.errors import NnseeError
from nnsee.notebook.html import box, names_for, number, scale_bar, text, tile, tiles, upscale_for
from nnsee.render import symmetric_scale, weight_tile

#: Most tiles drawn inline; more are left out with a note (``limit=`` changes it).
LIMIT = 100


def weights_html(weights: np.ndarray, class_names: Sequence[object] | None = None, title: str = "Class templates",
                 shared: bool = True, size: int = 56, limit: int = LIMIT) -> str:
    """Tiles of ``weights`` (K, C, H, W) or (K, H, W), captioned by ``class_names`` (default 0..K-1), each about
    ``size`` pixels wide."""
    w = np.asarray(weights)
    if w.ndim == 3:
        w = w[:, None]
    if w.ndim != 4 or w.shape[1] not in (1, 3):
        raise NnseeError(f"weight images must have shape (K, C, H, W) with C = 1 or 3, got {w.shape}: pass class "
                         "templates as class_templates(model) returns them")
    names = names_for(class_names, len(w))
    shown = w[:limit]
    upscale = upscale_for(w.shape[-1], size)
    common = symmetric_scale(w)
    parts = []
    for k, (image, name) in enumerate(zip(shown, names, strict=False)):
        scale = common if shared else symmetric_scale(image)
        caption = text(name) if shared else f"{text(name)} ±{number(scale)}"
        parts.append(tile(weight_tile(image, scale, upscale), f"weights of class {k}", caption))
    note = f"<div>the first {len(shown)} of {len(w)} shown</div>" if len(shown) < len(w) else ""
    scale_note = f"shared scale ±{number(common)}" if shared else "each tile on its own scale"
    return box(f"{text(title)} <span style=\"font-weight:normal\">({scale_note}; red +, blue −)</span>",
               tiles(parts), scale_bar(common) if shared else "", note, kind="weights")

