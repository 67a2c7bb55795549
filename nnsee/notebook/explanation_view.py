"""One explained image (:class:`~nnsee.methods.one_image.ImageExplanation`): the prediction, every class's
probability (the report's bar chart), and the maps: for softmax regression each class's contributions
``x ⊙ W_k`` (they sum, with ``b_k``, to the score), for an MLP the top units' ``x ⊙ W_1[j]``, or one attribution map."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from nnsee.notebook.html import box, names_for, number, percent, resized_svg, scale_bar, table, text, upscale_for
from nnsee.notebook.maps import signed_tiles
from nnsee.render import bar_chart_svg

if TYPE_CHECKING:
    from nnsee.methods.one_image import ImageExplanation, Panel


def explanation_html(e: ImageExplanation, class_names: Sequence[object] | None = None,
                     image: np.ndarray | None = None, size: int = 56) -> str:
    """``e`` drawn small; ``image`` (C, H, W) in [0, 1], the input as loaded, is shown first when given."""
    names = names_for(class_names, len(e.logits))
    k = e.predicted
    title = (f"{text(e.view)}: predicted {text(names[k])} "
             f'<span data-metric="probability">{percent(e.probabilities[k])}</span>')
    captions = [_caption(p, names) for p in e.panels]
    maps = np.stack([p.map for p in e.panels]) if e.panels else np.zeros((0, 1, 1, 1))
    upscale = upscale_for(maps.shape[-1] if e.panels else 28, size)
    drawn, scale = signed_tiles(maps, captions, upscale, f"{e.view} map", image)
    chart = resized_svg(bar_chart_svg(e.probabilities, names, highlight=k, title="probabilities"), 260)
    return box(title, drawn, scale_bar(scale), _sums(e, names), chart, kind="explanation")


def _caption(p: Panel, names: list[str]) -> str:
    if p.kind == "class":
        return f"{text(names[p.index])}: {number(p.value)}"
    if p.kind == "unit":
        return f"unit {p.index}: h = {number(p.value)}"
    return f"of {text(names[p.index])}"


def _sums(e: ImageExplanation, names: list[str]) -> str:
    """The dot product's bookkeeping for the predicted class: Σ contributions + bias = score (contributions only)."""
    d = e.dot
    if d is None:
        extras = [(text(key), number(v)) for key, v in e.extras.items() if isinstance(v, int | float)]
        return table(["", ""], extras) if extras else ""
    k = e.predicted
    linear = hasattr(d, "contributions")
    bias = d.bias if linear else d.out_bias
    what = "pixels x_i W_k,i" if linear else "units' votes W_out[k, j] h_j"
    return table(["class", f"Σ over {what}", "+ bias", "= score"],
                 [(text(names[c]), number(d.contribution_sum[c], 4), f'<span data-metric="bias">'
                   f"{number(bias[c], 4)}</span>", number(d.logits[c], 4)) for c in (k,)])
