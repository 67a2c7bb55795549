"""Standardization: one image before and after each mode, and the norms that show 'equal magnitude'."""

from __future__ import annotations

from typing import Any

import numpy as np

from nnsee.data.standardize import Standardizer
from nnsee.methods import standardization_norms, standardization_views
from nnsee.render import data_uri, symmetric_scale, weight_tile
from nnsee.report.sections.common import ReportInput, image_uri, upscale_for

#: Bytes of training images (float32) the section's pixel statistics and norms work on at once: the pixel fit makes
#: float64 temporaries of about 4x its input, so at 3x224x224 this is 55 reference images (~130 MB at the peak)
#: where 5,000 images (3 GB, 12 GB of temporaries) were taken before; below ~52x52 RGB the 5,000 images still fit.
WORK_BYTES = 32 << 20


def standardization_section(inp: ReportInput, n_images: int = 4) -> dict[str, Any] | None:
    train = inp.splits.train
    if len(train) == 0:
        return None
    upscale = upscale_for(inp.shape, 70)
    picks = np.linspace(0, len(train) - 1, num=min(n_images, len(train))).astype(int)
    per_image = max(1, train.images[0].nbytes)
    rows_at_once = max(1, WORK_BYTES // per_image)
    pixel = _pixel_standardizer(inp, train.images[: min(len(train), 5000, rows_at_once)])
    rows = []
    for i in picks:
        image = train.images[i]  # one read (of a streamed set: one decode)
        views = standardization_views(image, pixel)
        row = {"original": image_uri(image, upscale), "views": []}
        for mode, view in views.items():
            scale = symmetric_scale(view)
            row["views"].append({"mode": mode, "uri": data_uri(weight_tile(view, scale, upscale)),
                                 "norm": float(np.linalg.norm(view)), "scale": scale})
        rows.append(row)
    shown = min(len(train), 2000)  # sliced chunk by chunk: a streamed set decodes one chunk at a time
    parts = [standardization_norms(train.images[k : min(k + rows_at_once, shown)], pixel)
             for k in range(0, shown, rows_at_once)]
    norms = {mode: np.concatenate([p[mode] for p in parts]) for mode in parts[0]}
    standardizer = inp.run.standardizer
    mode = standardizer.mode if standardizer is not None else "no standardization"
    return {"rows": rows, "mode": mode, "norms": _summarise(norms)}


def _pixel_standardizer(inp: ReportInput, reference: np.ndarray) -> Standardizer:
    """The run's own pixel standardization (statistics of its whole training set) where it used one, else one
    fitted once on ``reference`` (the first training images, at most :data:`WORK_BYTES` of them)."""
    own = inp.run.standardizer
    if own is not None and own.mode == "pixel" and own.mean is not None:
        return own
    return Standardizer("pixel").fit(reference)


def _summarise(norms: Any) -> list[dict[str, Any]]:
    out = []
    for mode, values in dict(norms).items():
        values = np.asarray(values, dtype=np.float64)
        out.append({"mode": mode, "min": float(values.min()), "max": float(values.max()),
                    "cv": float(values.std() / values.mean()) if values.mean() else 0.0})
    return out


TEMPLATE = """\
{% set s = sections.standardization %}
<h2 id="standardization">Standardization</h2>
<p>This run used <b>{{ s.mode }}</b>. "All inputs should have the same magnitude": with <span class="math">image</span>
standardization every image has mean 0 and norm √D, so no image scores higher only because it is brighter, and
every template pixel is compared on the same footing.</p>
<table><tr><th>original</th><th>none</th><th>image</th><th>pixel</th></tr>
{% for r in s.rows %}<tr><td><img src="{{ r.original }}" alt="original"></td>
  {% for v in r.views %}<td class="name"><img src="{{ v.uri }}" alt="{{ v.mode }}"><br>‖x′‖ = {{ v.norm|num }}</td>{% endfor %}</tr>{% endfor %}
</table>
<table><tr><th class="name">mode</th><th>min ‖x′‖</th><th>max ‖x′‖</th><th>spread (std/mean)</th></tr>
{% for n in s.norms %}<tr><td class="name">{{ n.mode }}</td><td>{{ n.min|num }}</td><td>{{ n.max|num }}</td><td>{{ n.cv|num }}</td></tr>{% endfor %}</table>
"""  # noqa: E501
