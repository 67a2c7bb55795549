"""Hidden-unit cards (:class:`~nnsee.methods.hidden_units.UnitCard`): the unit's incoming weights ``W_1[j]`` as an
image (one symmetric scale shared by the cards drawn together, as in the report), its bias ``b_1[j]``, its outgoing
weights ``W_out[:, j]`` (one vote per class, red +, blue −), its top images and what switching it off costs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from nnsee.notebook.html import (
    box,
    img,
    names_for,
    number,
    percent,
    resized_svg,
    scale_bar,
    table,
    text,
    tile,
    tiles,
    upscale_for,
)
from nnsee.render import bar_chart_svg, mosaic, symmetric_scale, weight_tile

if TYPE_CHECKING:
    from nnsee.methods.hidden_units import UnitCard

#: Most cards drawn inline from a list (``limit=``).
LIMIT = 6


def unit_card_html(card: UnitCard, class_names: Sequence[object] | None = None, images: np.ndarray | None = None,
                   size: int = 84) -> str:
    """One card; ``images`` (N, C, H, W) in [0, 1], the training images its ``top_images`` index, adds them."""
    return unit_cards_html([card], class_names, images, size)


def unit_cards_html(cards: Sequence[UnitCard], class_names: Sequence[object] | None = None,
                    images: np.ndarray | None = None, size: int = 84, limit: int = LIMIT) -> str:
    """The first ``limit`` cards side by side, incoming weights on one shared scale."""
    shown = list(cards)[:limit]
    names = names_for(class_names, len(shown[0].outgoing))
    scale = symmetric_scale(np.stack([c.incoming for c in shown]))
    upscale = upscale_for(shown[0].incoming.shape[-1], size)
    parts = [_card(c, names, scale, upscale, images) for c in shown]
    more = f"<div>the first {len(shown)} of {len(cards)} cards shown</div>" if len(shown) < len(cards) else ""
    title = "Hidden unit" if len(cards) == 1 else "Hidden units"
    return box(f"{title} <span style=\"font-weight:normal\">(incoming weights on a shared scale ±{number(scale)}; "
               "red +, blue −)</span>", tiles(parts), scale_bar(scale), more, kind="units")


def _card(c: UnitCard, names: list[str], scale: float, upscale: int, images: np.ndarray | None) -> str:
    facts = [("bias", f'<span data-metric="bias">{number(c.bias, 4)}</span>'),
             ("promotes", text(names[c.promotes])), ("suppresses", text(names[c.suppresses]))]
    if np.isfinite(c.importance.get("ablation_overall", np.nan)):
        facts.append(("switched off", f"accuracy {percent(-c.importance['ablation_overall'], signed=True)} overall"))
    finite = np.where(np.isfinite(c.ablation), c.ablation, np.inf)
    worst = int(np.argmin(finite))
    if finite[worst] < 0:  # some class loses accuracy without it
        facts.append(("hurts most", f"{text(names[worst])} ({percent(c.ablation[worst], signed=True)})"))
    votes = resized_svg(bar_chart_svg(c.outgoing, names, title="outgoing weights W_out[:, j]"), 220)
    top = ""
    if images is not None and len(c.top_images):
        picked = np.asarray(images[np.asarray(c.top_images)], dtype=np.float32)
        sheet = mosaic(picked, ncols=3, upscale=upscale_for(picked.shape[-1], 28))
        top = f"<div>top images<br>{img(sheet, 'the images it responds to most')}</div>"
    body = (tile(weight_tile(c.incoming, scale, upscale), f"incoming weights of unit {c.unit}", f"unit {c.unit}")
            + table(["", ""], facts) + votes + top)
    return f'<div style="border:1px solid #eee;padding:4px" data-unit="{c.unit}">{body}</div>'
