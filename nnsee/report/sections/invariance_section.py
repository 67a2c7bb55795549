"""Invariance (Zeiler & Fergus's Fig. 5): a few test images translated, scaled and rotated; per transform the
images, the true class's probability and each layer's normalized feature distance (:mod:`nnsee.methods.invariance`).

The layers: a dense chain's hidden activations; a CNN's stages (as the CNN section chooses them, or ``--layers``)
and its penultimate features (the input of its last ``nn.Linear``, read as the output of the module called just
before it). Cost: one forward pass of 28 images per shown image.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from torch import nn

from nnsee.render import data_uri, mosaic
from nnsee.render.svg import line_chart_svg
from nnsee.report.sections.common import ReportInput, upscale_for

N_IMAGES = 3
TITLES = {"translate": "vertical shift (px)", "scale": "scale (%)", "rotate": "rotation (°, counter-clockwise)"}
AXIS = {"translate": 1.0, "scale": 100.0, "rotate": 1.0}  # scales plotted in percent: the chart's ticks are whole


def feature_layers(inp: ReportInput) -> list[str]:
    """The layers whose distances are drawn (see the module's docstring); none for softmax regression."""
    from nnsee.methods.base import dense_stages

    model = inp.run.model
    if inp.caps.dense_chain:
        return [s.act_name for s in dense_stages(model, inp.shape, "invariance")[:-1]]
    if not inp.caps.conv_layers:
        return []
    from nnsee.report.sections.cnn_section import chosen_stages, probe

    seen = probe(model, inp.shape)
    layers = chosen_stages(inp, seen)
    linears = [n for n, m in model.named_modules() if isinstance(m, nn.Linear) and n in seen.order]
    if linears:
        last = seen.order.index(linears[-1])
        before = seen.order[last - 1] if last > 0 else None
        if before is not None and int(np.prod(seen.shapes[before])) == model.get_submodule(linears[-1]).in_features:
            layers.append(before)
    return list(dict.fromkeys(layers))


def chosen_images(inp: ReportInput, n: int = N_IMAGES) -> list[int]:
    """The test images chosen for the report (``nnsee report --layer-images``, shared with the layer-by-layer
    section; checked by ``build_report``), else test images of ``n`` different classes spread over the classes
    (0, K/n, 2K/n, ...): of each, the first one the model classifies correctly (else the first of that class)."""
    if inp.layer_images is not None:
        return list(dict.fromkeys(int(i) for i in inp.layer_images))
    labels = np.asarray(inp.splits.test.labels)
    if labels.size == 0:
        return []
    right = inp.test_logits.argmax(1) == labels
    classes = [int(k) for k in np.unique(labels)]
    out = []
    for k in [classes[int(i)] for i in np.linspace(0, len(classes) - 1, min(n, len(classes)))]:
        mine = np.flatnonzero(labels == k)
        good = mine[right[mine]]
        out.append(int(good[0] if good.size else mine[0]))
    return list(dict.fromkeys(out))


def chart(series: dict[str, tuple[np.ndarray, np.ndarray]], title: str, x_label: str,
          y_range: tuple[float, float] | None = None) -> str:
    """A small line chart of the section, its x axis named ``x_label``."""
    return line_chart_svg(series, title, width=300, height=190, y_range=y_range, x_label=x_label)


def invariance_section(inp: ReportInput) -> dict[str, Any] | None:
    from nnsee.methods.invariance import invariance_curves

    index = chosen_images(inp)
    if not index:
        return None
    layers = feature_layers(inp)
    raw = np.asarray(inp.splits.test.images[np.asarray(index)], dtype=np.float32)
    from nnsee.report.sections.cnn_section import shrunk

    zoom = max(1, upscale_for(inp.shape, 48))  # drawn by the browser (pixelated): a PNG of 1 pixel per pixel
    images = []
    for i, x in zip(index, raw, strict=True):
        label = int(inp.splits.test.labels[i])
        rows = []
        for curve in invariance_curves(inp.run.model, x, label, layers=layers, standardize=inp.run.standardize):
            a = curve.amounts * AXIS[curve.family]
            strip = mosaic(shrunk(np.clip(curve.images, 0, 1)), ncols=len(a), pad=1)
            rows.append({
                "family": curve.family,
                "strip": data_uri(strip), "width": strip.width * zoom, "height": strip.height * zoom,
                "amounts": ", ".join(f"{v:g}" for v in curve.amounts),
                "probability": chart({"p(true class)": (a, curve.probability)}, f"p({inp.class_names[label]})",
                                     TITLES[curve.family], (0.0, 1.0)),
                "distances": chart({k: (a, d) for k, d in curve.distances.items()}, "‖f(Tx) − f(x)‖ / ‖f(x)‖",
                                   TITLES[curve.family]) if curve.distances else None,
            })
        images.append({"index": i, "name": inp.class_names[label], "rows": rows})
    return {"images": images, "layers": layers, "chosen": inp.layer_images is not None}


TEMPLATE = """\
{% set v = sections.invariance %}
<h2 id="invariance">Invariance: translated, scaled, rotated (Zeiler &amp; Fergus, Fig. 5)</h2>
<p>{% if v.chosen %}The test images chosen with <span class="math">--layer-images</span>{% else %}A test image of
each of {{ v.images|length }} classes (<span class="math">nnsee report --layer-images 3,17</span> picks others){% endif %}:
each is moved (whole pixels, vertically), zoomed about its centre and rotated, in raw pixels with the
background (the median of its border) filling what comes in from outside, then standardized as in training. Left:
the transformed images; middle: the probability of the true class; right: for each layer
({% if v.layers %}{{ v.layers|join(", ") }}{% else %}none: this model has no hidden layer{% endif %}) the distance
<span class="math">‖f(Tx) − f(x)‖ / ‖f(x)‖</span> between the features of the transformed and of the original image,
divided by the original's norm so layers of different sizes share one axis (0: unchanged). Deeper layers of a
network that has learned invariance stay closer to 0 than the first.</p>
{% for img in v.images %}<h3>{{ img.name }} (test image {{ img.index }})</h3>
<table class="invariance">{% for r in img.rows %}<tr><td><img src="{{ r.strip }}" width="{{ r.width }}" height="{{ r.height }}" alt="{{ r.family }}: {{ r.amounts }}"><br>
<span class="muted">{{ r.family }}: {{ r.amounts }}</span></td><td>{{ r.probability|svg }}</td>
<td>{% if r.distances %}{{ r.distances|svg }}{% endif %}</td></tr>{% endfor %}</table>
{% endfor %}
"""  # noqa: E501
