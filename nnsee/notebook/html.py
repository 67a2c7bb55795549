"""Small HTML pieces every notebook view uses: escaped text, an image as a data: URI, a figure box, a table.

Everything is self-contained (PNG data: URIs and inline SVG, nothing fetched) and every text that comes from data
(class names, run names) passes through :func:`text`: bidi controls removed, the name isolated, HTML-escaped.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from html import escape
from typing import Any

from PIL import Image

from nnsee.errors import NnseeError
from nnsee.render import colorbar, data_uri
from nnsee.render.bidi import isolated

#: The box every view is drawn in: small, on white, the report's sans-serif font.
BOX_STYLE = ("font-family:sans-serif;font-size:12px;color:#222;background:#fff;border:1px solid #ddd;"
             "border-radius:4px;padding:6px 8px;margin:4px 0;display:inline-block;max-width:100%")
FLEX_STYLE = "display:flex;flex-wrap:wrap;gap:6px;align-items:flex-start"
TILE_STYLE = "text-align:center;font-size:11px"


class Shown:
    """What :func:`nnsee.show` returns: the HTML of a view, displayed by Jupyter through ``_repr_html_``."""

    def __init__(self, html: str) -> None:
        self.html = html

    def _repr_html_(self) -> str:
        return self.html

    def __str__(self) -> str:
        return self.html

    def __repr__(self) -> str:
        return f"<nnsee view: {len(self.html):,} characters of HTML; display it in a notebook>"


def text(value: object) -> str:
    """``value`` as HTML text: bidi-isolated (:func:`~nnsee.render.bidi.isolated`) and escaped, quotes included."""
    return escape(isolated(value), quote=True)


def number(value: Any, digits: int = 3) -> str:
    """A number for people: ``digits`` significant digits, ``—`` for None, ``nan``/``inf`` spelled out."""
    if value is None:
        return "—"
    v = float(value)
    return f"{v:.{digits}g}" if math.isfinite(v) else str(v)


def percent(value: Any, signed: bool = False) -> str:
    """An accuracy or probability in [0, 1] as a percentage with one decimal (``91.4%``; ``signed``: ``+1.2%``,
    ``−1.2%``); ``—`` for None."""
    if value is None or not math.isfinite(float(value)):
        return "—"
    shown = f"{100 * float(value):{'+' if signed else ''}.1f}%"
    return shown.replace("-", "−")


def img(image: Image.Image, alt: str) -> str:
    """``<img>`` of a Pillow image as a PNG data: URI, at its own pixel size (``alt`` is escaped here)."""
    return (f'<img src="{data_uri(image)}" alt="{escape(alt, quote=True)}" width="{image.width}" '
            f'height="{image.height}" style="image-rendering:pixelated">')


def tile(image: Image.Image, alt: str, caption: str) -> str:
    """An image with its caption (already HTML) under it."""
    return f'<div style="{TILE_STYLE}">{img(image, alt)}<br>{caption}</div>'


def tiles(parts: Iterable[str]) -> str:
    return f'<div style="{FLEX_STYLE}">{"".join(parts)}</div>'


def scale_bar(scale: float) -> str:
    """The report's colour bar: blue −scale … 0 … red +scale."""
    return f'<div>{img(colorbar(scale), f"colour scale: blue -{scale:.3g}, red +{scale:.3g}")}</div>'


def box(title: str, *body: str, kind: str = "") -> str:
    """A view: a bold title (already HTML) over its parts, in one small box."""
    data = f' data-nnsee="{escape(kind, quote=True)}"' if kind else ""
    return f'<div class="nnsee-view"{data} style="{BOX_STYLE}"><div><b>{title}</b></div>{"".join(body)}</div>'


def table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A compact table; cells are HTML already (escape names with :func:`text`)."""
    head = "".join(f'<th style="text-align:left;padding:1px 6px">{h}</th>' for h in header)
    body = "".join("<tr>" + "".join(f'<td style="padding:1px 6px">{c}</td>' for c in row) + "</tr>" for row in rows)
    return f'<table style="border-collapse:collapse;margin:4px 0"><tr>{head}</tr>{body}</table>'


def resized_svg(svg: str, width: int) -> str:
    """An inline SVG chart drawn ``width`` pixels wide (its viewBox keeps the drawing; the height follows)."""
    match = re.match(r'<svg([^>]*?) width="(\d+)" height="(\d+)"', svg)
    if match is None:
        return svg
    w, h = int(match.group(2)), int(match.group(3))
    height = max(1, round(h * width / w))
    return f'<svg{match.group(1)} width="{width}" height="{height}"' + svg[match.end():]


def names_for(names: Sequence[object] | None, k: int) -> list[str]:
    """The ``k`` class names to show: ``names`` when given (their count must be ``k``), else ``0 .. k-1``."""
    if names is None:
        return [str(i) for i in range(k)]
    names = [str(n) for n in names]
    if len(names) != k:
        raise NnseeError(f"got {len(names)} class names for {k} classes: pass class_names= with one name per class")
    return names


def upscale_for(side: int, target: int = 84) -> int:
    """Nearest-neighbour upscale that draws a ``side``-pixel image about ``target`` pixels wide (at least 1)."""
    return max(1, round(target / max(1, side)))
