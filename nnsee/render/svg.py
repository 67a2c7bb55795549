"""Small inline SVG charts for the HTML report (no image file per chart). All text is XML-escaped."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from functools import lru_cache
from html import escape

import numpy as np

from nnsee.render.bidi import isolated, plain

POSITIVE_COLOUR = "#b2182b"  # red end of RdBu_r
NEGATIVE_COLOUR = "#2166ac"  # blue end of RdBu_r
SERIES_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")

# Characters XML 1.0 forbids even when escaped (control characters, lone surrogates, U+FFFE/U+FFFF).
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def xml_text(text: object) -> str:
    """``text`` safe inside an SVG/XML element or attribute: escaped, forbidden characters replaced by '?'."""
    return escape(_XML_INVALID.sub("?", str(text)), quote=True)


def _num(x: float) -> str:
    return f"{x:.2f}".rstrip("0").rstrip(".")


def _shorten(text: str, max_chars: int) -> str:
    return text if len(text) <= max_chars else text[: max(1, max_chars - 1)] + "…"


@lru_cache(maxsize=4096)
def _label(label: str, max_chars: int) -> tuple[str, str]:
    """A bar's label as the chart writes it, escaped and bidi-isolated: in full (its tooltip) and shortened to
    ``max_chars``. Cached: every chart of a report labels its bars with the same class names."""
    name = " ".join(plain(label).split())
    return xml_text(isolated(name)), xml_text(isolated(_shorten(name, max_chars)))


def bar_chart_svg(
    values: Sequence[float] | np.ndarray,
    labels: Sequence[object],
    width: int = 320,
    height: int | None = None,
    highlight: int | None = None,
    title: str | None = None,
) -> str:
    """Horizontal bars, one row per value: label left, bar from a zero line (red positive, blue negative), value right.

    ``height`` defaults to 16 px per row. ``highlight`` makes one row bold. Non-finite values draw no bar and print
    as ``nan``/``inf``. Each row carries a ``<title>`` with the full label and value (a tooltip).
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    if len(labels) != v.size:
        raise ValueError(f"got {v.size} values and {len(labels)} labels")
    k = v.size
    top = 16 if title else 2
    row = 16.0 if height is None else max(4.0, (height - top - 2) / max(k, 1))
    height = int(height if height is not None else math.ceil(top + row * k + 2))
    label_w = min(110, int(width * 0.35))
    value_w = 60
    plot_x0, plot_x1 = label_w + 4, max(label_w + 8, width - value_w)
    finite = v[np.isfinite(v)]
    has_neg = bool((finite < 0).any())
    has_pos = bool((finite > 0).any()) or not has_neg
    scale = float(np.abs(finite).max()) if finite.size else 0.0
    if has_neg and has_pos:
        zero = (plot_x0 + plot_x1) / 2
        half = (plot_x1 - plot_x0) / 2
    elif has_neg:
        zero, half = plot_x1, plot_x1 - plot_x0
    else:
        zero, half = plot_x0, plot_x1 - plot_x0
    font = max(6, min(11, int(row * 0.7)))
    max_chars = max(3, int(label_w / (font * 0.6)))
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="{font}" role="img">'
    ]
    if title:
        out.append(f'<text x="2" y="12" font-weight="bold">{xml_text(title)}</text>')
    for i, (x, lab) in enumerate(zip(v.tolist(), labels, strict=True)):
        y = top + i * row
        cy = y + row / 2
        full, short = _label(str(lab), max_chars)
        finite_x = math.isfinite(x)
        shown = f"{x:.3g}" if finite_x else ("nan" if math.isnan(x) else ("+inf" if x > 0 else "-inf"))
        bold = ' font-weight="bold"' if i == highlight else ""
        out.append(f"<g><title>{full}: {shown}</title>")
        out.append(
            f'<text x="{label_w}" y="{_num(cy)}" text-anchor="end" dominant-baseline="middle"{bold}>{short}</text>'
        )
        if finite_x and scale > 0 and x != 0:
            length = abs(x) / scale * half
            bx = zero if x > 0 else zero - length
            colour = POSITIVE_COLOUR if x > 0 else NEGATIVE_COLOUR
            stroke = ' stroke="black" stroke-width="1"' if i == highlight else ""
            out.append(
                f'<rect x="{_num(bx)}" y="{_num(y + row * 0.15)}" width="{_num(length)}" '
                f'height="{_num(row * 0.7)}" fill="{colour}"{stroke}/>'
            )
        out.append(f'<text x="{plot_x1 + 3}" y="{_num(cy)}" dominant-baseline="middle"{bold}>{shown}</text></g>')
    out.append(
        f'<line x1="{_num(zero)}" y1="{top}" x2="{_num(zero)}" y2="{_num(top + row * k)}" stroke="black" '
        'stroke-width="1"/>'
    )
    out.append("</svg>")
    return "".join(out)


def sparkline_svg(series: Mapping[str, Sequence[float]], width: int = 160, height: int = 40) -> str:
    """Tiny line chart of one or more series (e.g. ``{"train": losses, "validation": ...}``) on shared axes.

    Non-finite points break the line. A ``<title>`` per series gives its name and last finite value.
    """
    arrays = {str(k): np.asarray(s, dtype=np.float64).ravel() for k, s in series.items()}
    finite = [a[np.isfinite(a)] for a in arrays.values()]
    allv = np.concatenate(finite) if finite else np.zeros(0)
    n = max((a.size for a in arrays.values()), default=0)
    lo, hi = (float(allv.min()), float(allv.max())) if allv.size else (0.0, 1.0)
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    pad = 2.0

    def xy(i: int, val: float) -> str:
        x = pad + (width - 2 * pad) * (i / max(n - 1, 1))
        y = height - pad - (height - 2 * pad) * (val - lo) / (hi - lo)
        return f"{_num(x)},{_num(y)}"

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}">']
    for j, (name, a) in enumerate(arrays.items()):
        colour = SERIES_COLOURS[j % len(SERIES_COLOURS)]
        fin = a[np.isfinite(a)]
        last = f"{fin[-1]:.3g}" if fin.size else "none"
        out.append(f"<g><title>{xml_text(name)}: {xml_text(last)}</title>")
        run: list[str] = []
        for i, val in enumerate(list(a) + [math.nan]):
            if np.isfinite(val):
                run.append(xy(i, float(val)))
                continue
            if len(run) == 1:
                x, y = run[0].split(",")
                out.append(f'<circle cx="{x}" cy="{y}" r="1.5" fill="{colour}"/>')
            elif run:
                out.append(f'<polyline points="{" ".join(run)}" fill="none" stroke="{colour}" stroke-width="1.5"/>')
            run = []
        out.append("</g>")
    out.append("</svg>")
    return "".join(out)


def line_chart_svg(
    series: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    title: str = "",
    width: int = 420,
    height: int = 260,
    y_range: tuple[float, float] | None = None,
    x_label: str = "epoch",
) -> str:
    """Lines ``{label: (x, y)}`` on shared axes with ticks, a legend, a title and the x axis named ``x_label``;
    non-finite points break a line, and a point that stands alone (no finite neighbour) is drawn as a dot."""
    points = [(np.asarray(x, np.float64), np.asarray(y, np.float64)) for x, y in series.values()]
    xs = np.concatenate([x for x, _ in points]) if points else np.zeros(0)
    ys = np.concatenate([y for _, y in points]) if points else np.zeros(0)
    xs, ys = xs[np.isfinite(xs)], ys[np.isfinite(ys)]
    x0, x1 = (float(xs.min()), float(xs.max())) if xs.size else (0.0, 1.0)
    y0, y1 = y_range if y_range is not None else ((float(ys.min()), float(ys.max())) if ys.size else (0.0, 1.0))
    if x1 <= x0:
        x1 = x0 + 1
    if y1 <= y0:
        y1 = y0 + (abs(y0) or 1.0)
    left, right, top, bottom = 48, 10, 24, 30
    pw, ph = width - left - right, height - top - bottom

    def px(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * pw

    def py(y: float) -> float:
        return top + (1 - (y - y0) / (y1 - y0)) * ph

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="10">',
             f'<text x="{width / 2:.1f}" y="14" text-anchor="middle" font-size="12">{xml_text(title)}</text>',
             f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#999"/>']
    for t in np.linspace(y0, y1, 5):
        parts.append(f'<line x1="{left}" x2="{left + pw}" y1="{py(t):.1f}" y2="{py(t):.1f}" stroke="#eee"/>'
                     f'<text x="{left - 4}" y="{py(t) + 3:.1f}" text-anchor="end">{t:.3g}</text>')
    for t in np.unique(np.round(np.linspace(x0, x1, min(6, int(x1 - x0) + 1)))):
        parts.append(f'<text x="{px(t):.1f}" y="{top + ph + 14}" text-anchor="middle">{t:g}</text>')
    for n, (label, (x, y)) in enumerate(zip(series, points, strict=True)):
        colour = SERIES_COLOURS[n % len(SERIES_COLOURS)]
        runs: list[list[str]] = [[]]
        for a, b in zip(x, y, strict=True):
            if np.isfinite(a) and np.isfinite(b):
                runs[-1].append(f"{px(a):.1f},{py(min(max(b, y0), y1)):.1f}")
            elif runs[-1]:
                runs.append([])
        for run in runs:
            if len(run) == 1:
                cx, cy = run[0].split(",")
                parts.append(f'<circle cx="{cx}" cy="{cy}" r="2.5" fill="{colour}"/>')
            elif run:
                parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.6" points="{" ".join(run)}"/>')
        shown = xml_text(isolated(_shorten(plain(label), 14)))
        parts.append(f'<rect x="{left + pw - 96}" y="{top + 6 + 14 * n}" width="10" height="3" fill="{colour}"/>'
                     f'<text x="{left + pw - 82}" y="{top + 10 + 14 * n}">{shown}</text>')
    parts.append(f'<text x="{left + pw / 2:.1f}" y="{height - 4}" text-anchor="middle">{xml_text(x_label)}</text>'
                 "</svg>")
    return "".join(parts)


def learning_curves_svg(history: Mapping[str, Sequence[float]]) -> tuple[str, str]:
    """(loss chart, accuracy chart) of a training history: train vs validation per epoch."""
    epochs = history.get("epoch", [])
    loss = {name: (epochs, history[key]) for name, key in (("train", "train_loss"), ("validation", "val_loss"))
            if key in history}
    accuracy = {name: (epochs, history[key])
                for name, key in (("train", "train_accuracy"), ("validation", "val_accuracy")) if key in history}
    return line_chart_svg(loss, "loss (cross-entropy)"), line_chart_svg(accuracy, "accuracy", y_range=(0.0, 1.0))
