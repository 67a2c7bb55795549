"""One explained image: the prediction, every class's probability (the report's bar chart) and the maps, on one
symmetric scale. For softmax regression each class's contributions ``x ⊙ W_k`` (they sum, with ``b_k``, to the
score), for an MLP the top units' ``x ⊙ W_1[j]``, or one attribution map. Draws an
:class:`~nnsee.methods.one_image.ImageExplanation` and the dot product's own results
(:func:`nnsee.methods.explain`: :class:`~nnsee.methods.contributions.LinearExplanation`,
:class:`~nnsee.methods.contributions.MLPExplanation`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from nnsee.notebook.html import box, names_for, number, percent, resized_svg, scale_bar, table, text, upscale_for
from nnsee.notebook.maps import signed_tiles
from nnsee.render import bar_chart_svg

if TYPE_CHECKING:
    from nnsee.methods.contributions import LinearExplanation, MLPExplanation
    from nnsee.methods.one_image import ImageExplanation


def explanation_html(e: ImageExplanation, class_names: Sequence[object] | None = None,
                     image: np.ndarray | None = None, size: int = 56) -> str:
    """``e`` drawn small; ``image`` (C, H, W) in [0, 1], the input as loaded, is shown first when given."""
    names = names_for(class_names, len(e.logits))
    captions = [_caption(p.kind, p.index, p.value, names) for p in e.panels]
    maps = np.stack([p.map for p in e.panels]) if e.panels else np.zeros((0, 1, 1, 1))
    return _draw(e.view, e.probabilities, maps, captions, names, e.dot, e.extras, image, size)


def dot_html(d: LinearExplanation | MLPExplanation, class_names: Sequence[object] | None = None,
             image: np.ndarray | None = None, size: int = 56) -> str:
    """The dot product of one image (:func:`nnsee.methods.explain`): every class's map (linear) or the top units'."""
    names = names_for(class_names, len(d.logits))
    if hasattr(d, "contributions"):
        maps = d.contributions
        captions = [_caption("class", k, d.logits[k], names) for k in range(len(d.logits))]
    else:
        maps = d.pixel_contributions
        captions = [_caption("unit", int(j), d.hidden[j], names) for j in d.top_units]
    return _draw("contributions", d.probabilities, maps, captions, names, d, {}, image, size)


def _draw(view: str, probabilities: np.ndarray, maps: np.ndarray, captions: list[str], names: list[str],
          dot: LinearExplanation | MLPExplanation | None, extras: Mapping[str, Any], image: np.ndarray | None,
          size: int) -> str:
    k = int(np.argmax(probabilities))
    title = (f"{text(view)}: predicted {text(names[k])} "
             f'<span data-metric="probability">{percent(probabilities[k])}</span>')
    upscale = upscale_for(maps.shape[-1] if len(maps) else 28, size)
    drawn, scale = signed_tiles(maps, captions, upscale, f"{view} map", image)
    chart = resized_svg(bar_chart_svg(probabilities, names, highlight=k, title="probabilities"), 260)
    return box(title, drawn, scale_bar(scale), _sums(dot, extras, k, names), chart, kind="explanation")


def _caption(kind: str, index: int, value: float, names: list[str]) -> str:
    if kind == "class":
        return f"{text(names[index])}: {number(value)}"
    if kind == "unit":
        return f"unit {index}: h = {number(value)}"
    return f"of {text(names[index])}"


def _sums(d: LinearExplanation | MLPExplanation | None, extras: Mapping[str, Any], k: int, names: list[str]) -> str:
    """The dot product's bookkeeping for the predicted class ``k``: Σ contributions + bias = score; else the
    method's numbers."""
    if d is None:
        rows = [(text(key), number(v)) for key, v in extras.items() if isinstance(v, int | float)]
        return table(["", ""], rows) if rows else ""
    linear = hasattr(d, "contributions")
    bias = d.bias if linear else d.out_bias
    what = "pixels x_i W_k,i" if linear else "units' votes W_out[k, j] h_j"
    return table(["class", f"Σ over {what}", "+ bias", "= score"],
                 [(text(names[k]), number(d.contribution_sum[k], 4),
                   f'<span data-metric="bias">{number(bias[k], 4)}</span>', number(d.logits[k], 4))])
