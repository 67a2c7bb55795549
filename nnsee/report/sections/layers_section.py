"""Layer by layer (as CNN Explainer): for chosen test images, every layer's output in forward order, then the logits
and the probabilities. Feature maps (C, H, W) are small tiles on one shared diverging scale per layer (at most
:data:`MAX_MAPS` maps), vectors (D,) a strip of cells (at most :data:`MAX_VALUES`); the page says what it leaves out.

:func:`layer_panels` draws one :class:`~nnsee.methods.layer_by_layer.LayerByLayer` (the live page uses it too).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

from nnsee.errors import MethodError
from nnsee.methods.layer_by_layer import LayerByLayer, LayerOutput, layer_by_layer
from nnsee.render import data_uri, symmetric_scale
from nnsee.render.colormap import signed_to_rgb
from nnsee.report.sections.common import ReportInput, class_bars_svg, image_uri, spread, upscale_for

MAX_MAPS = 16  # feature maps shown per layer (the first ones)
MAX_VALUES = 1024  # values of a vector layer shown as cells (the first ones)
MAX_LAYERS = 64  # layers shown per image (evenly spread, first and last kept)
TILE_PX = 32  # about this many pixels per feature-map side on the page
STRIP_COLUMNS = 64  # cells per row of a vector strip


def _maps_png(maps: np.ndarray, scale: float) -> Image.Image:
    """Maps (n, H, W) in a grid (4 a row) on the diverging map, 1-px white gaps, large ones averaged down."""
    n, h, w = maps.shape
    step = max(1, -(-max(h, w) // (2 * TILE_PX)))
    if step > 1:  # average step × step blocks (cropping the ragged edge)
        hh, ww = h // step * step or h, w // step * step or w
        maps = maps[:, :hh, :ww]
        if hh % step == 0 and ww % step == 0:
            maps = maps.reshape(n, hh // step, step, ww // step, step).mean((2, 4))
        h, w = maps.shape[1:]
    cols = min(n, 4)
    rows = -(-n // cols)
    sheet = np.full((rows * (h + 1) - 1, cols * (w + 1) - 1, 3), 255, np.uint8)
    for i, m in enumerate(maps):
        r, c = divmod(i, cols)
        sheet[r * (h + 1) : r * (h + 1) + h, c * (w + 1) : c * (w + 1) + w] = signed_to_rgb(m, scale)
    up = max(1, round(TILE_PX / max(h, w)))
    img = Image.fromarray(sheet, "RGB")
    return img.resize((img.width * up, img.height * up), Image.Resampling.NEAREST) if up > 1 else img


def _strip_png(values: np.ndarray, scale: float) -> Image.Image:
    """Values (D,) as cells, :data:`STRIP_COLUMNS` a row, on the diverging map; the last row padded white."""
    d = len(values)
    cols = min(d, STRIP_COLUMNS)
    rows = -(-d // cols)
    cells = np.full(rows * cols, np.nan)
    cells[:d] = values
    rgb = signed_to_rgb(cells.reshape(rows, cols), scale)
    rgb.reshape(-1, 3)[d:] = 255
    img = Image.fromarray(rgb, "RGB")
    cell = max(2, min(12, 384 // cols))
    return img.resize((cols * cell, rows * cell * 2 if rows == 1 else rows * cell), Image.Resampling.NEAREST)


def layer_panel(layer: LayerOutput) -> dict[str, Any]:
    """One layer: its name, type, shape (e.g. ``16 × 14 × 14``), one PNG data URI and what was left out."""
    v = np.asarray(layer.values, dtype=np.float64)
    shape = " × ".join(map(str, layer.shape)) or "scalar"
    note = None
    if v.ndim == 3 and v.shape[1] * v.shape[2] > 1:
        shown = v[:MAX_MAPS]
        scale = symmetric_scale(shown)
        img = _maps_png(shown, scale)
        note = f"first {MAX_MAPS} of {v.shape[0]} maps" if v.shape[0] > MAX_MAPS else None
    elif v.ndim == 2 and v.size > 1:
        scale = symmetric_scale(v)
        img = _maps_png(v[None], scale)
    else:
        flat = v.ravel()
        shown = flat[:MAX_VALUES]
        scale = symmetric_scale(shown) if shown.size else 0.0
        img = _strip_png(shown, scale) if shown.size else Image.new("RGB", (1, 1), "white")
        note = f"first {MAX_VALUES:,} of {flat.size:,} values" if flat.size > MAX_VALUES else None
    return {"name": layer.name, "kind": layer.kind, "shape": shape, "uri": data_uri(img), "scale": float(scale),
            "note": note}


def layer_panels(view: LayerByLayer, class_names: list[str]) -> dict[str, Any]:
    """Every layer's panel (at most :data:`MAX_LAYERS`, evenly spread), the logits' and probabilities' bar charts."""
    index = spread(list(range(len(view.layers))), MAX_LAYERS)
    k = int(np.argmax(view.probabilities))
    return {
        "layers": [layer_panel(view.layers[i]) for i in index],
        "n_layers": len(view.layers),
        "logits_svg": class_bars_svg(view.logits, class_names, "logits z", keep=(k,)),
        "probabilities_svg": class_bars_svg(view.probabilities, class_names, "probabilities softmax(z)", keep=(k,),
                                            signed=False),
        "predicted": k,
        "probability": float(view.probabilities[k]),
    }


def chosen_images(inp: ReportInput) -> list[int]:
    """``inp.layer_images`` (checked), or the first correctly classified test image and the first mistake (the
    first two test images of different classes when there is no mistake)."""
    n = len(inp.splits.test)
    if inp.layer_images is not None:
        bad = [i for i in inp.layer_images if not 0 <= int(i) < n]
        if bad:
            raise MethodError(f"layer images: no test image {bad[0]}; the test split has {n:,} images (0..{n - 1}): "
                              "pass indices in that range, e.g. --layer-images 0,1")
        return [int(i) for i in inp.layer_images]
    if n == 0:
        return []
    labels = np.asarray(inp.splits.test.labels)
    right = inp.test_logits.argmax(1) == labels
    picks = [int(np.argmax(right))] if right.any() else [0]
    if (~right).any():
        picks.append(int(np.argmax(~right)))
    else:
        other = np.flatnonzero(labels != labels[picks[0]])
        picks += [int(other[0])] if len(other) else []
    return sorted(set(picks))


def layers_section(inp: ReportInput) -> dict[str, Any] | None:
    """The chosen test images, each through every layer; None without test images."""
    chosen = chosen_images(inp)
    if not chosen:
        return None
    names = inp.class_names
    labels = np.asarray(inp.splits.test.labels)
    up = upscale_for(inp.shape, 84)
    images = []
    for i in chosen:
        x = inp.inputs(inp.splits.test.images, np.array([i]))[0]
        panels = layer_panels(layer_by_layer(inp.run.model, x), names)
        raw = np.asarray(inp.splits.test.images[np.array([i])])[0]
        images.append({"index": i, "label": names[int(labels[i])], "predicted_name": names[panels["predicted"]],
                       "correct": panels["predicted"] == int(labels[i]), "input": image_uri(raw, up), **panels})
    return {"images": images, "max_maps": MAX_MAPS, "max_values": MAX_VALUES, "max_layers": MAX_LAYERS,
            "chosen": inp.layer_images is not None}


TEMPLATE = """\
{% set s = sections.layers %}
<h2 id="layers">Layer by layer</h2>
<p>{% if s.chosen %}The chosen test images{% else %}The first correctly classified test image and the first mistake{% endif %}
(<span class="math">nnsee report --layer-images 3,17</span> picks others), each through every layer of the model in
the order the forward pass calls them: each layer's output with its shape, feature maps as tiles (blue negative, red
positive, one scale per layer, at most {{ s.max_maps }} maps), vectors as a strip of cells (at most {{ s.max_values }}
values), then the logits and the probabilities.</p>
{% for im in s.images %}<div class="layers{% if not im.correct %} mistake{% endif %}" id="layers-{{ im.index }}">
  <h3>test image {{ im.index }} · label <b>{{ im.label }}</b> · predicted <b>{{ im.predicted_name }}</b>
    (p = {{ im.probability|num(3) }})</h3>
  {% if im.n_layers > im.layers|length %}<p class="muted">showing {{ im.layers|length }} of {{ im.n_layers }} layers, evenly spread</p>{% endif %}
  <div class="flex">
    <div><img src="{{ im.input }}" alt="test image {{ im.index }}"><div>input</div></div>
    {% for l in im.layers %}<div class="layer"><img src="{{ l.uri }}" alt="{{ l.name }} output">
      <div class="math">{{ l.name }}</div><div class="muted">{{ l.kind }} · {{ l.shape }}</div>{% if l.note %}<div class="muted">{{ l.note }}</div>{% endif %}</div>
    {% endfor %}
  </div>
  <div class="flex">{{ im.logits_svg|svg }}{{ im.probabilities_svg|svg }}</div>
</div>
{% endfor %}
"""  # noqa: E501
