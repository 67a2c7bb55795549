"""An attribution result (:class:`~nnsee.methods.attribution.method.Attribution`, what every registered method
returns): one map per input on one shared symmetric scale, and the method's numbers (e.g. integrated gradients'
``convergence_delta``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from nnsee.notebook.html import box, number, scale_bar, table, text, upscale_for
from nnsee.notebook.maps import signed_tiles, summed
from nnsee.render import symmetric_scale

if TYPE_CHECKING:
    from nnsee.methods.attribution.method import Attribution

#: Most maps drawn inline (``limit=``).
LIMIT = 16


def attribution_html(a: Attribution, images: np.ndarray | None = None, captions: Sequence[str] | None = None,
                     size: int = 56, limit: int = LIMIT) -> str:
    """The first ``limit`` maps of ``a`` (layer maps, e.g. Grad-CAM's, at their own resolution), each after its
    input from ``images`` (N, C, H, W) in [0, 1] when given; ``captions`` (text) name them (default: image i)."""
    maps = np.asarray(a.maps)[:limit]
    n = len(maps)
    shown = [text(c) for c in captions[:n]] if captions is not None else [f"image {i}" for i in range(n)]
    upscale = upscale_for(maps.shape[-1], size)
    if images is not None:
        scale = symmetric_scale(summed(maps))
        drawn = "".join(signed_tiles(maps[i : i + 1], [shown[i]], upscale_for(np.shape(images)[-1], size), a.method,
                                     np.asarray(images[i]), scale)[0] for i in range(n))
    else:
        drawn, scale = signed_tiles(maps, shown, upscale, a.method)
    space = "at the layer, before upsampling" if a.space == "layer" else "in input space, channels summed"
    numbers = [(text(k), _value(v)) for k, v in a.extras.items()]
    more = f"<div>the first {n} of {len(a.maps)} maps shown</div>" if n < len(a.maps) else ""
    return box(f"{text(a.method)} <span style=\"font-weight:normal\">({space})</span>", drawn, scale_bar(scale),
               more, table(["", ""], numbers) if numbers else "", kind="attribution")


def _value(v: object) -> str:
    if isinstance(v, int | float | np.number):
        return number(v)
    if isinstance(v, np.ndarray) and v.size <= 8:
        return ", ".join(number(x) for x in v.ravel())
    return text(v) if isinstance(v, str) else text(type(v).__name__)
