"""Hidden-unit cards: incoming weights, outgoing weights to every class, bias, top-9 images, ablation (the accuracy
change and the finer mean change of each class's probability and logit when the unit is switched off)."""

from __future__ import annotations

from typing import Any

import numpy as np

from nnsee.methods import unit_cards
from nnsee.render import data_uri, mosaic, symmetric_scale, weight_tile
from nnsee.report.sections.common import (
    MAX_BARS,
    MAX_CLASSES,
    ReportInput,
    class_bars_svg,
    upscale_for,
)

MAX_UNIT_PAGES = 16  # 16 pages of 256 cards: 4,096 units at most, so a report stays bounded in size
SORTS = {"outgoing-norm": "the norm of its outgoing weights ‖W_out[:, j]‖",
         "ablation": "the largest mean drop of a class's probability when it is switched off"}


def units_section(inp: ReportInput, sort_by: str | None = None) -> dict[str, Any] | None:
    """All cards, most important first (by ``sort_by``, default ``inp.sort_units``), split in pages of
    ``inp.max_units``, at most :data:`MAX_UNIT_PAGES` of them; None for models without units."""
    sort_by = inp.sort_units if sort_by is None else sort_by
    if not inp.caps.one_hidden_layer:
        inp.notes.append(f"hidden-unit cards: they need one hidden layer between the image and the classes; this "
                         f"model is {inp.caps.describe()}")
        return None
    cards = unit_cards(inp.run.model, inp.splits.train.images, inp.splits.val.images, inp.splits.val.labels,
                       inp.class_names, layer=inp.caps.hidden_layers[0], sort_by=sort_by,
                       transform=inp.run.standardize)
    scale = symmetric_scale(np.stack([c.incoming for c in cards]))
    # Incoming weights are encoded one PNG pixel per weight and drawn zoomed by the browser (pixelated): the same
    # picture as an upscaled tile, a ninth of the pixels to encode at 28 px.
    upscale = upscale_for(inp.shape, 84)
    side = [inp.shape[-1] * upscale, inp.shape[-2] * upscale]
    small = max(1, upscale_for(inp.shape, 28))
    names = inp.class_names
    rendered = []
    for rank, card in enumerate(cards, start=1):
        top = inp.splits.train.images[card.top_images]
        rendered.append({
            "rank": rank,
            "unit": card.unit,
            "incoming": data_uri(weight_tile(card.incoming, scale, 1)),
            "bias": float(card.bias),
            "outgoing": [float(v) for v in card.outgoing] if len(names) <= MAX_CLASSES else None,
            "outgoing_text": _listed(card.outgoing),
            "outgoing_svg": class_bars_svg(card.outgoing, names, "outgoing weights W_out[k, j]"),
            # Most units flip no validation image: one line says so instead of a chart of zeros.
            "ablation_svg": (class_bars_svg(card.ablation, names, "accuracy change when switched off")
                             if np.nan_to_num(card.ablation).any() else None),
            "probability_svg": class_bars_svg(card.probability, names, "mean change of p(class) when switched off"),
            "logit": [float(v) for v in card.logit] if len(names) <= MAX_CLASSES else None,
            "logit_text": _listed(card.logit),
            "summary": off_summary(card.probability, names),
            "promotes": names[card.promotes],
            "suppresses": names[card.suppresses],
            "top": data_uri(mosaic(top, ncols=3, upscale=small, pad=1), level=0) if len(top) else None,
            "importance": card.importance,
        })
    pages = [rendered[i : i + inp.max_units] for i in range(0, len(rendered), inp.max_units)]
    if len(pages) > MAX_UNIT_PAGES:
        pages = pages[:MAX_UNIT_PAGES]
        inp.notes.append(f"only the {MAX_UNIT_PAGES * inp.max_units} most important units are shown")
    note = (f"with {len(names):,} classes, each card's charts show the {MAX_BARS} classes of largest |value|, and "
            f"its list of outgoing weights is left out" if len(names) > MAX_CLASSES else None)
    return {"count": len(cards), "scale": scale, "sort": SORTS.get(sort_by, sort_by), "pages": pages, "note": note,
            "n_val": len(inp.splits.val.labels), "side": side}


def _listed(values: np.ndarray) -> str:
    """``[0.123, -0.456, ...]``: one value per class, three decimals."""
    return "[" + ", ".join(f"{v:.3f}" for v in np.asarray(values, dtype=np.float64).tolist()) + "]"


def off_summary(probability: np.ndarray, names: list[str]) -> str | None:
    """One line on the class whose mean probability falls most when the unit is off ("switching it off lowers
    p(3) by 0.081 on average", two significant digits); None without validation images."""
    row = np.asarray(probability, dtype=np.float64)
    if not np.isfinite(row).any():
        return None
    k = int(np.nanargmin(row))
    if not row[k] < 0:
        return "switching it off lowers no class's probability on average"
    return f"switching it off lowers p({names[k]}) by {-row[k]:.2g} on average"


TEMPLATE = """\
{% set u = sections.units %}
<h2 id="units">Hidden units{% if page_names|length > 1 %} (page {{ page }} of {{ page_names|length }}){% endif %}</h2>
{% if page == 1 %}<p>Each of the {{ u.count }} hidden units, most important first by {{ u.sort }}. A card shows the unit's
incoming weights <span class="math">W_1[j]</span> as an image (shared scale ±{{ u.scale|num }}), its bias, its outgoing weights
to every class, the class it promotes most and suppresses most, the nine training images that activate it most,
how each class's validation accuracy changes when the unit is switched off (h_j = 0), and, finer, the mean change
of each class's probability p_k over the {{ u.n_val }} validation images (a unit rarely flips a prediction, but it
moves every probability). The mean logit change is <span class="math">Δz_k = −mean(h_j)·W_out[k, j]</span>.</p>{% if u.note %}
<p class="muted">{{ u.note }}</p>{% endif %}{% endif %}
<div class="flex">
{% for c in cards %}<div class="card" id="unit-{{ c.unit }}">
  <h3>#{{ c.rank }} · unit {{ c.unit }}</h3>
  <div class="flex"><img src="{{ c.incoming }}" width="{{ u.side[0] }}" height="{{ u.side[1] }}" alt="incoming weights of unit {{ c.unit }}">
    {% if c.top %}<img src="{{ c.top }}" alt="top 9 training images of unit {{ c.unit }}" title="the 9 training images that activate it most">{% endif %}</div>
  <div>bias {{ c.bias|num(4) }} · promotes <b>{{ c.promotes }}</b> · suppresses <b>{{ c.suppresses }}</b></div>
  {{ c.outgoing_svg|svg }}
  {% if c.ablation_svg %}{{ c.ablation_svg|svg }}{% else %}<div class="muted">switching it off changes no class's validation accuracy</div>{% endif %}
  {% if c.summary %}<div class="off">{{ c.summary }}</div>{% endif %}
  {{ c.probability_svg|svg }}
  {% if c.logit is not none %}<div class="muted math">mean logit change: {{ c.logit_text }}</div>{% endif %}
  {% if c.outgoing is not none %}<div class="muted math">weights: {{ c.outgoing_text }}</div>{% endif %}
</div>{% endfor %}
</div>
"""  # noqa: E501
