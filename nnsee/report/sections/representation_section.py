"""The representation map: the test set's features (the input of the last Linear layer) on their first two principal
components, coloured by class, each image shown on hover without JavaScript; the map at each weight snapshot
(aligned to the final one); and the nearest training images of a few test images in the same feature space.

Hover without scripts: each point is a ``<g>`` holding its circle and a hidden tip (a window onto one sprite of all
the sampled images, ``<use>`` of an ``<image>`` in ``<defs>``, and the class name) drawn beside the plot; the
page's CSS ``g.pt:hover .tip {visibility: visible}`` reveals it. t-SNE is left to the live page (``nnsee serve``):
it takes seconds even on a few hundred images, far over this section's share of the report's time.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nnsee.methods.base import linear_layers
from nnsee.methods.representation import RepresentationMap, nearest_training, representation_map
from nnsee.render import data_uri, mosaic
from nnsee.render.svg import xml_text
from nnsee.report.sections.cnn_section import PALETTE
from nnsee.report.sections.common import (
    MAX_CLASSES,
    ReportInput,
    dropped_note,
    head,
    image_uri,
    spread,
    upscale_for,
)

SAMPLE = 500  # test images on the report's map (an equal share per class); the live page shows 2,000
SNAPSHOTS = 6  # small multiples at most (evenly spaced snapshot epochs)
SEARCHED = 1_000  # the nearest training images are searched among the first this many (the live page: all)
QUERIES = 6  # test images whose nearest training images are shown
K = 5
SIZE, MARGIN, TIP = 420, 8, 112  # plot side, its inner margin and the hover tip's side, in SVG pixels
SMALL = 150
PANEL = 220  # the tip panel right of the plot (image and class name)
SPRITE_COLUMNS = 40
THUMB_SIDE = 48  # larger images are subsampled to at most this many pixels a side in the sprite


def colour(k: int) -> str:
    return "#" + bytes(PALETTE[k % len(PALETTE)]).hex()


def _scale(frames: np.ndarray, side: int) -> np.ndarray:
    """Every frame's points in SVG pixels of a ``side``-wide square (one scale for all frames, y upwards)."""
    lo, hi = frames.reshape(-1, 2).min(0), frames.reshape(-1, 2).max(0)
    span = float(max((hi - lo).max(), 1e-12))
    xy = (frames - (lo + hi) / 2) / span * (side - 2 * MARGIN) + side / 2
    xy[..., 1] = side - xy[..., 1]
    return xy


def thumbnails(images: np.ndarray | Any, index: np.ndarray, chunk: int = 64) -> np.ndarray:
    """The images at ``index`` in [0, 1], every ``s``-th pixel (``s = ceil(side / THUMB_SIDE)``), read ``chunk`` at a
    time: the sprite stays small for large images."""
    step = -(-max(images.shape[-2:]) // THUMB_SIDE)
    return np.concatenate([np.clip(np.asarray(images[index[i : i + chunk]])[..., ::step, ::step], 0, 1)
                           for i in range(0, len(index), chunk)])


def map_svg(xy: np.ndarray, labels: np.ndarray, names: list[str], sprite_tile: tuple[int, int]) -> str:
    """The large map: one ``<g class="pt">`` per point (circle + hidden tip: the image from the sprite ``#rep-sprite``
    and its class), the tips drawn in a panel right of the plot."""
    h, w = sprite_tile
    out = [f'<svg class="repmap" width="{SIZE + PANEL}" height="{SIZE}" viewBox="0 0 {SIZE + PANEL} {SIZE}" '
           f'role="img" aria-label="PCA of the test features">',
           f'<rect x="0.5" y="0.5" width="{SIZE - 1}" height="{SIZE - 1}" fill="none" stroke="#ccc"/>',
           f'<text x="{SIZE + 12}" y="{TIP + 40}" class="hint">hover a point</text>']
    for i, ((x, y), k) in enumerate(zip(xy, labels, strict=True)):
        row, col = divmod(i, SPRITE_COLUMNS)
        out.append(f'<g class="pt"><circle cx="{x:.1f}" cy="{y:.1f}" r="2.6" fill="{colour(int(k))}"/>'
                   f'<g class="tip"><svg x="{SIZE + 12}" y="8" width="{TIP}" height="{TIP}" '
                   f'viewBox="{col * w} {row * h} {w} {h}"><use href="#rep-sprite"/></svg>'
                   f'<text x="{SIZE + 12}" y="{TIP + 24}">{xml_text(names[int(k)])}</text></g></g>')
    out.append("</svg>")
    return "".join(out)


def small_svg(xy: np.ndarray, labels: np.ndarray, title: str) -> str:
    """A small multiple: the points only, at ``SMALL``/``SIZE`` of the large map's scale."""
    dots = "".join(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="1.2" fill="{colour(int(k))}"/>'
                   for (x, y), k in zip(xy * SMALL / SIZE, labels, strict=True))
    return (f'<svg width="{SMALL}" height="{SMALL + 16}" viewBox="0 -16 {SMALL} {SMALL + 16}">'
            f'<text x="2" y="-4">{xml_text(title)}</text>'
            f'<rect x="0.5" y="0.5" width="{SMALL - 1}" height="{SMALL - 1}" fill="none" stroke="#ccc"/>{dots}</svg>')


def neighbours(inp: ReportInput, rmap: RepresentationMap) -> dict[str, Any]:
    """The nearest training images (Euclidean, in feature space) of the first sampled test image of each of the
    first :data:`QUERIES` classes, among the first :data:`SEARCHED` training images."""
    test, train, names = inp.splits.test, inp.splits.train, inp.class_names
    firsts = np.unique(rmap.labels, return_index=True)[1][:QUERIES]
    chosen = rmap.index[firsts]
    searched = head(train.images, SEARCHED)
    found = nearest_training(inp.run.model, inp.inputs(test.images, chosen), searched, k=K,
                             transform=inp.run.standardize)
    upscale = upscale_for(inp.shape, 56)
    rows = []
    for q, index, dist in zip(chosen, found.index, found.distance, strict=True):
        images = train.images[np.sort(index)]  # read in increasing order (a streamed set), shown nearest first
        rank = np.argsort(np.argsort(index))
        hits = [{"uri": image_uri(images[r], upscale), "label": names[int(train.labels[i])], "index": int(i),
                 "distance": float(d)} for r, i, d in zip(rank, index, dist, strict=True)]
        rows.append({"uri": image_uri(test.images[int(q)], upscale), "label": names[int(test.labels[q])],
                     "index": int(q), "hits": hits})
    return {"rows": rows, "searched": len(searched), "train": len(train.images)}


def representation_section(inp: ReportInput) -> dict[str, Any] | None:
    run, test = inp.run, inp.splits.test
    if len(test) < 3:
        return None
    if not linear_layers(run.model):
        inp.notes.append(f"representation map: it reads the input of the model's last nn.Linear layer, and this "
                         f"{type(run.model).__name__} has none")
        return None
    if inp.caps.dense_layers == 1:
        inp.notes.append("representation map: softmax regression has no hidden layer; its last Linear layer reads "
                         "the pixels themselves (train an mlp or a cnn to see learned features)")
        return None
    epochs = spread([e for e in run.snapshot_epochs if e != run.epoch], SNAPSHOTS)
    rmap = representation_map(run.model, test.images, test.labels, snapshots={e: run.snapshot_state(e) for e in epochs},
                              n=SAMPLE, transform=run.standardize)
    xy, small = _scale(rmap.frames, SIZE), []
    names = inp.class_names
    thumbs = thumbnails(test.images, rmap.index)
    sprite = mosaic(thumbs, ncols=SPRITE_COLUMNS, pad=0)
    for epoch, frame in zip(rmap.epochs, xy, strict=True):
        small.append(small_svg(frame, rmap.labels, "final weights" if epoch is None else f"epoch {epoch}"))
    present = sorted(set(int(k) for k in rmap.labels))
    legend = [{"name": names[k], "rgb": colour(k)} for k in present[:MAX_CLASSES]]
    share = np.bincount(rmap.labels, minlength=len(names))[present]
    return {
        "layer": rmap.layer, "n": len(rmap.index), "n_test": len(test), "per_class": int(share.max()),
        "fewest": int(share.min()),
        "explained": [float(v) for v in rmap.explained[-1]],
        "sprite": data_uri(sprite), "sprite_w": sprite.width, "sprite_h": sprite.height,
        "map_svg": map_svg(xy[-1], rmap.labels, names, thumbs.shape[-2:]), "small": small if len(small) > 1 else [],
        "legend": legend, "legend_note": dropped_note("the first " + str(MAX_CLASSES) + " classes", len(legend),
                                                      len(present), f" (colours repeat every {len(PALETTE)})"),
        "nearest": neighbours(inp, rmap),
    }


TEMPLATE = """\
{% set r = sections.representation %}
<h2 id="representation">Representation map</h2>
<style>
  svg.repmap g.pt .tip { visibility: hidden; } svg.repmap g.pt:hover .tip { visibility: visible; }
  svg.repmap g.pt:hover circle { stroke: #000; stroke-width: 1.5; }
  svg.repmap .hint { fill: #999; } svg.repmap:hover .hint { visibility: hidden; }
  svg.repmap text { font-size: 12px; } svg image { image-rendering: pixelated; }
  .swatch { display: inline-block; width: 10px; height: 10px; margin: 0 3px 0 10px; }
</style>
<p>What the classifier reads: the input of its last Linear layer, <span class="math">{{ r.layer }}</span>, for
{{ r.n }} test images of {{ r.n_test }} ({{ r.per_class }} drawn at random per class{% if r.fewest < r.per_class %},
all of a smaller class{% endif %}), on its first two principal components ({{ r.explained[0]|pct }} and
{{ r.explained[1]|pct }} of the variance). Hover a point to see its image. Classes the model separates form separate
clouds; images between clouds are the ones it confuses.</p>
<svg width="0" height="0" style="position: absolute"><defs><image id="rep-sprite" width="{{ r.sprite_w }}"
  height="{{ r.sprite_h }}" href="{{ r.sprite }}"/></defs></svg>
<div>{{ r.map_svg|svg }}</div>
<div>{% for c in r.legend %}<span class="swatch" style="background: {{ c.rgb }}"></span>{{ c.name }}{% endfor %}</div>
{% if r.legend_note %}<p class="muted">{{ r.legend_note }}</p>{% endif %}
{% if r.small %}
<p>The same images at each weight snapshot: each frame its own PCA, rotated, reflected and scaled onto the final one
(orthogonal Procrustes), so the clouds can be watched separating.</p>
<div class="flex">{% for s in r.small %}{{ s|svg }}{% endfor %}</div>
{% endif %}
{% set n = r.nearest %}
<h3>Nearest training images</h3>
<p>For one test image of each of the first classes, the training images with the closest features (Euclidean
distance, searched among {{ n.searched }} of the {{ n.train }} training images; the live page searches them all).</p>
{% for row in n.rows %}<div class="flex">
  <div class="tile"><img src="{{ row.uri }}" alt="test image {{ row.index }}"><br>test: {{ row.label }}</div>
  {% for h in row.hits %}<div class="tile"><img src="{{ h.uri }}" alt="training image {{ h.index }}"><br>
    {{ h.label }}<br><span class="muted">d = {{ h.distance|num }}</span></div>{% endfor %}
</div>{% endfor %}
"""
