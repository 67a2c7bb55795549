"""Hidden-unit cards: incoming weights, outgoing weights to every class, bias, top-9 images, ablation."""

from __future__ import annotations

from typing import Any

import numpy as np

from nnsee.methods import MethodError, unit_cards
from nnsee.render import bar_chart_svg, data_uri, symmetric_scale, weight_tile
from nnsee.report.sections.common import ReportInput, images_grid_uri, upscale_for

SORTS = {"outgoing-norm": "the norm of its outgoing weights ‖W_out[:, j]‖",
         "ablation": "the largest per-class accuracy drop when it is switched off"}


def units_section(inp: ReportInput, sort_by: str = "outgoing-norm") -> dict[str, Any] | None:
    """All cards, most important first, split in pages of ``inp.max_units``; None for models without units."""
    try:
        cards = unit_cards(inp.run.model, inp.train_std, inp.val_std, inp.splits.val.labels, inp.class_names,
                           sort_by=sort_by)
    except MethodError as exc:
        inp.notes.append(f"hidden-unit cards: {exc}")
        return None
    scale = symmetric_scale(np.stack([c.incoming for c in cards]))
    upscale = upscale_for(inp.shape, 84)
    small = max(1, upscale_for(inp.shape, 28))
    names = inp.class_names
    rendered = []
    for rank, card in enumerate(cards, start=1):
        top = inp.splits.train.images[card.top_images]
        rendered.append({
            "rank": rank,
            "unit": card.unit,
            "incoming": data_uri(weight_tile(card.incoming, scale, upscale)),
            "bias": float(card.bias),
            "outgoing": [float(v) for v in card.outgoing],
            "outgoing_svg": bar_chart_svg(card.outgoing, names, width=260, title="outgoing weights W_out[k, j]"),
            "ablation_svg": bar_chart_svg(card.ablation, names, width=260,
                                          title="accuracy change when switched off"),
            "promotes": names[card.promotes],
            "suppresses": names[card.suppresses],
            "top": images_grid_uri(top, 3, small) if len(top) else None,
            "importance": card.importance,
        })
    pages = [rendered[i : i + inp.max_units] for i in range(0, len(rendered), inp.max_units)]
    return {"count": len(cards), "scale": scale, "sort": SORTS.get(sort_by, sort_by), "pages": pages}
