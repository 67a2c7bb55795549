"""Confusion drill-down: a page per cell of the confusion matrix (``confusion-<true>-<predicted>.html``) with that
cell's test images, each beside a map of why the model gave it the predicted class.

Every non-empty cell gets a page when the matrix is shown (at most :data:`MAX_CLASSES` classes); above, the pairs the
overview lists as top confusions. The work is bounded: at most :data:`CAP` images per cell and about
:data:`MAX_SHOWN` in all (fewer for large images), explained in batches and drawn as one PNG per page (a CSS sprite:
the page has no script), so the section costs a fraction of a training epoch.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from nnsee.methods.base import softmax
from nnsee.methods.confusion_cells import CAP, confusion_cells, predicted_maps, top_confusions
from nnsee.render import data_uri, png_bytes, symmetric_scale
from nnsee.render.colormap import NAN_RGB, gray_to_uint8, signed_lut, signed_to_rgb
from nnsee.report.sections.common import MAX_CLASSES, ReportInput, upscale_for

MAX_SHOWN = 300  # images on all the cell pages together, for 28×28 grayscale images (fewer for larger ones)
_PIXELS = MAX_SHOWN * 784
TOP_LINKS = 10  # the largest mistakes linked from the section on the main page


def cell_page(i: int, j: int) -> str:
    """The drill-down page of cell (true ``i``, predicted ``j``)."""
    return f"confusion-{i}-{j}.html"


def shown_matrix(inp: ReportInput) -> np.ndarray | None:
    """The test confusion matrix the overview shows: the run's stored test scores, else the model's own now."""
    test = inp.run.metrics.get("test")
    if test and test.get("n"):
        return np.asarray(test["confusion_matrix"], dtype=np.int64)
    return None


def per_cell_cap(counts: np.ndarray, total: int, cap: int = CAP) -> int:
    """The largest ``c ≤ cap`` with ``Σ min(c, count) ≤ total`` over the cells (0 when not even one image a cell
    fits): one cap for every cell, so small cells show all their images and large ones the same number each."""
    counts = np.asarray(counts, dtype=np.int64)
    for c in range(cap, 0, -1):
        if np.minimum(counts, c).sum() <= total:
            return c
    return 0


def confusion_section(inp: ReportInput) -> dict[str, Any] | None:
    test = inp.splits.test
    if len(test) == 0:
        return None
    names, k = inp.class_names, len(inp.class_names)
    logits = inp.test_logits
    predicted = logits.argmax(1)
    everything = confusion_cells(predicted, test.labels, k, cap=1, cells=())
    matrix = everything.matrix
    stored = shown_matrix(inp)
    if stored is not None and stored.shape == matrix.shape:
        matrix = np.maximum(matrix, stored)  # every cell the overview links gets its page
    if k <= MAX_CLASSES:
        wanted = [(int(i), int(j)) for i, j in zip(*np.nonzero(matrix), strict=True)]
    else:
        wanted = top_confusions(matrix, MAX_CLASSES)
    values = int(np.prod(inp.shape))
    budget = max(min(len(wanted), MAX_CLASSES), min(MAX_SHOWN, _PIXELS // max(values, 1)))  # large images: fewer
    cap = per_cell_cap(everything.matrix[tuple(np.array(wanted, dtype=np.int64).reshape(-1, 2).T)], budget)
    cells = confusion_cells(predicted, test.labels, k, cap=max(cap, 1), cells=wanted)
    shown = {c: cells.index[c][:cap] for c in wanted}
    order = np.concatenate([shown[c] for c in wanted]) if wanted else np.zeros(0, np.int64)
    maps, kind, units = _maps(inp, order, predicted)
    probability = softmax(logits[order])[np.arange(len(order)), predicted[order]] if len(order) else np.zeros(0)
    pages, start = {}, 0
    upscale = upscale_for(inp.shape, 56)
    for i, j in wanted:
        n = len(shown[(i, j)])
        span = slice(start, start + n)
        pages[cell_page(i, j)] = _page(inp, i, j, cells.count(i, j), order[span], probability[span],
                                       maps[span] if maps is not None else None, kind,
                                       units[span] if units is not None else None, cap, upscale)
        start += n
    top = top_confusions(everything.matrix, TOP_LINKS)
    return {
        "files": pages,
        "kind": kind,
        "cap": cap,
        "full": k <= MAX_CLASSES,
        "cells": len(wanted),
        "top": [{"true": names[i], "predicted": names[j], "count": everything.count(i, j), "href": cell_page(i, j)}
                for i, j in top if (i, j) in cells.index],
    }


def _maps(inp: ReportInput, order: np.ndarray,
          predicted: np.ndarray) -> tuple[np.ndarray | None, str, np.ndarray | None]:
    """The shown images' maps for their predicted class, read and explained in batches of 64 28×28 images' worth of
    values (one image a batch at 224×224×3, so a large model's backward pass stays small)."""
    from nnsee.errors import MethodError

    batch = max(1, min(64, 64 * 784 // max(int(np.prod(inp.shape)), 1)))
    parts, units, kind = [], [], ""
    try:
        for start in range(0, len(order), batch):
            index = order[start: start + batch]
            result = predicted_maps(inp.run.model, inp.inputs(inp.splits.test.images, index), predicted[index],
                                    inp.shape, batch=batch)
            parts.append(result.maps)
            kind = result.kind
            if result.units is not None:
                units.append(result.units)
    except MethodError as exc:  # a model gradient × input cannot explain: the images alone
        inp.notes.append(f"confusion drill-down: no maps ({exc})")
        return None, "", None
    if not parts:
        return None, kind, None
    return np.concatenate(parts), kind, (np.concatenate(units) if units else None)


def _sprite(images: np.ndarray, maps: np.ndarray | None, scale: float) -> tuple[bytes, int, int]:
    """One PNG: the images side by side in the top row, their maps (``RdBu_r``, ±``scale``) under them, 1 px of
    white between; returns it and the cell's width and height (image size + 1). Grayscale images make a palette
    PNG (1 byte a pixel, about 3x faster to encode than RGB): :func:`_palette`."""
    from PIL import Image

    n, c, h, w = images.shape
    rows = 1 if maps is None else 2
    g = gray_to_uint8(np.clip(np.nan_to_num(images, nan=1.0), 0, 1))  # (n, c, h, w)
    if c == 1:
        sheet = np.full((rows, h + 1, n, w + 1), _GRAYS - 1, np.uint8)  # white
        sheet[0, :h, :, :w] = (g[:, 0].astype(np.uint16) * (_GRAYS - 1) // 255).transpose(1, 0, 2)
        if maps is not None:
            sheet[1, :h, :, :w] = _map_index(maps[:, 0], scale).transpose(1, 0, 2)
        img = Image.fromarray(np.ascontiguousarray(sheet.reshape(rows * (h + 1), n * (w + 1))), "P")
        img.putpalette(_palette().ravel().tolist())
        return png_bytes(img), w + 1, h + 1
    sheet = np.full((rows, h + 1, n, w + 1, 3), 255, np.uint8)
    sheet[0, :h, :, :w] = g.transpose(2, 0, 3, 1)
    if maps is not None:
        sheet[1, :h, :, :w] = signed_to_rgb(maps[:, 0].transpose(1, 0, 2).reshape(h, n * w), scale).reshape(h, n, w, 3)
    pixels = sheet.reshape(rows * (h + 1), n * (w + 1), 3)
    return png_bytes(Image.fromarray(np.ascontiguousarray(pixels), "RGB")), w + 1, h + 1


_GRAYS = 127  # palette entries 0..126: gray levels; 127: NaN; 128..255: the signed map, -scale .. +scale


@functools.cache
def _palette() -> np.ndarray:
    """(256, 3) uint8: 127 grays from black to white, the NaN colour, then every other colour of ``RdBu_r``."""
    grays = np.round(np.arange(_GRAYS) * 255 / (_GRAYS - 1)).astype(np.uint8)
    return np.concatenate([np.repeat(grays[:, None], 3, 1), np.array([NAN_RGB], np.uint8), signed_lut()[::2]])


def _map_index(values: np.ndarray, scale: float) -> np.ndarray:
    """Palette indices of signed ``values``: ``128 + round((clip(v / scale, −1, 1) + 1) · 127 / 2)`` (0 → the
    neutral middle; ±inf → the ends), NaN → the NaN colour."""
    v = np.asarray(values, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        t = np.clip(v / scale, -1.0, 1.0) if scale > 0 else np.zeros_like(v)
    index = 128 + np.round((np.nan_to_num(t, nan=0.0) + 1) * 63.5).astype(np.int64)
    return np.where(np.isnan(v), _GRAYS, index).astype(np.uint8)


@functools.cache
def _page_template() -> Any:
    from nnsee.report.build import environment  # at build time: build imports the sections

    return environment().from_string(PAGE)


def _page(inp: ReportInput, i: int, j: int, count: int, index: np.ndarray, probability: np.ndarray,
          maps: np.ndarray | None, kind: str, units: np.ndarray | None, cap: int, upscale: int) -> bytes:
    names = inp.class_names
    images = np.asarray(inp.splits.test.images[index], dtype=np.float32) if len(index) else None
    scale = symmetric_scale(maps) if maps is not None else 0.0
    context: dict[str, Any] = {
        "title": inp.run.path.name, "true_name": names[i], "predicted_name": names[j], "i": i, "j": j, "count": count,
        "cap": cap, "kind": kind, "scale": scale, "z": upscale, "items": [],
    }
    if images is not None:
        png, cw, ch = _sprite(images, maps, scale)
        rows = 1 if maps is None else 2
        context.update(sprite=data_uri(png), cw=cw * upscale, ch=ch * upscale, w=(cw - 1) * upscale,
                       h=(ch - 1) * upscale, size=f"{cw * len(index) * upscale}px {ch * rows * upscale}px")
        context["items"] = [{"index": int(t), "p": float(probability[n]), "x": n * cw * upscale,
                             "unit": int(units[n]) if units is not None else None} for n, t in enumerate(index)]
    return _page_template().render(**context).encode("utf-8")


PAGE = """\
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'">
<title>nnsee · {{ title }} · true {{ true_name }}, predicted {{ predicted_name }}</title>
<style>
  body { font: 14px/1.45 system-ui, sans-serif; margin: 0 auto; max-width: 1200px; padding: 0 16px 48px; color: #222; }
  h1 { font-size: 20px; margin: 20px 0 4px; } .muted { color: #666; } .math { font-family: ui-monospace, monospace; }
  .flex { display: flex; flex-wrap: wrap; gap: 10px; align-items: flex-start; }
  .shot { margin: 0; border: 1px solid #ddd; border-radius: 6px; padding: 4px; font-size: 12px; text-align: center; }
  .pic { display: block; margin: 0 auto 2px; image-rendering: pixelated; background-repeat: no-repeat;
{% if sprite %}         width: {{ w }}px; height: {{ h }}px; background-size: {{ size }}; background-image: url({{ sprite }}); {% endif %}}
</style>
</head>
<body>
<p><a href="index.html#overview">← back to the report</a></p>
<h1>True <b>{{ true_name }}</b>, predicted <b>{{ predicted_name }}</b></h1>
<p>{{ '{:,}'.format(count) }} test image{{ 's' if count != 1 }} of class {{ i }} ({{ true_name }}) {{ 'are' if count != 1 else 'is' }} predicted as class {{ j }} ({{ predicted_name }}){{ ' — the correct ones' if i == j }}.
{% if not cap %}This report shows no images of its cells (its images are large and its cells many, so that it stays quick to build): <span class="math">nnsee serve RUN</span> shows them.
{% elif items|length < count %}Showing {{ items|length }} of {{ '{:,}'.format(count) }}: the first in the test set's order (at most {{ cap }} per cell in this report, so it builds fast).{% endif %}</p>
{% if kind == 'contributions' %}<p>Under each image: its contributions <span class="math">x ⊙ W[{{ predicted_name }}]</span> to the predicted class's score (red raises it, blue lowers it); they sum, with the bias, to the logit.{% elif kind == 'unit' %}<p>Under each image: the pixels <span class="math">x ⊙ W_1[j]</span> of the hidden unit j that voted most for the predicted class (largest <span class="math">W_out[k, j] · h_j</span>), red raising the unit, blue lowering it.{% elif kind %}<p>Under each image: gradient × input <span class="math">x ⊙ ∂z_k/∂x</span> for the predicted class k (channels summed): each pixel's first-order share of the score.{% endif %}
{% if kind %}One shared scale ±{{ scale|num }} on this page.</p>{% endif %}
<div class="flex">{% for it in items %}<figure class="shot" data-index="{{ it.index }}">
  <span class="pic" role="img" aria-label="test image {{ it.index }}" style="background-position: -{{ it.x }}px 0"></span>
  {% if kind %}<span class="pic" role="img" aria-label="map of test image {{ it.index }}" style="background-position: -{{ it.x }}px -{{ ch }}px"></span>{% endif %}
  <figcaption>#{{ it.index }} · p = {{ it.p|pct }}{% if it.unit is not none %}<br>unit {{ it.unit }}{% endif %}</figcaption></figure>{% endfor %}</div>
</body>
</html>
"""  # noqa: E501


def confusion_files(context: dict[str, Any]) -> dict[str, bytes]:
    """The cell pages beside the report (taken out of the context, which keeps only what the main page shows)."""
    return context.pop("files")


TEMPLATE = """\
{% set cf = sections.confusion %}
<h2 id="confusion">Inside the confusion matrix</h2>
<p>{% if cf.full %}Every non-empty cell of the confusion matrix above links to a page of its test images{% else %}Each pair in the top confusions above links to a page of its test images{% endif %}
{% if cf.cap %}(at most {{ cf.cap }} per cell){% else %}(here their counts only: the images are large and the cells many; nnsee serve shows them){% endif %}, each with {% if cf.kind == 'contributions' %}its contributions <span class="math">x ⊙ W_k</span>{% elif cf.kind == 'unit' %}the pixels of the hidden unit that voted most{% elif cf.kind %}its gradient × input map{% else %}no map{% endif %}
for the predicted class k and the probability the model gave it.</p>
{% if cf.top %}<p>The most frequent mistakes:</p>
<ul>{% for t in cf.top %}<li><a href="{{ t.href }}">true {{ t.true }} → predicted {{ t.predicted }}</a> ({{ t.count }})</li>{% endfor %}</ul>{% endif %}
"""  # noqa: E501
