"""Class → units: for each class the hidden units that vote for it most, and its effective template."""

from __future__ import annotations

from typing import Any

import numpy as np

from nnsee.methods import class_view
from nnsee.render import data_uri, symmetric_scale, weight_tile
from nnsee.report.sections.common import MAX_CLASSES, ReportInput, dropped_note, upscale_for


def class_units_section(inp: ReportInput, top: int = 9) -> dict[str, Any] | None:
    model, shape = inp.run.model, inp.shape
    if not inp.caps.one_hidden_layer:
        inp.notes.append(f"class → units: it needs one hidden layer between the image and the classes; this model "
                         f"is {inp.caps.describe()}")
        return None
    layer = inp.caps.hidden_layers[0]
    names = inp.class_names[:MAX_CLASSES]
    views = [class_view(model, k, shape, layer=layer, top=top) for k in range(len(names))]
    unit_scale = symmetric_scale(np.concatenate([v.incoming for v in views if len(v.units)] or [np.zeros(1)]))
    template_scale = symmetric_scale(np.stack([v.effective_template for v in views]))
    upscale, small = upscale_for(shape, 84), upscale_for(shape, 56)
    classes = []
    for name, view in zip(names, views, strict=True):
        classes.append({
            "name": name,
            "template": data_uri(weight_tile(view.effective_template, template_scale, upscale)),
            "units": [{"unit": int(u), "weight": float(w), "uri": data_uri(weight_tile(view.incoming[i], unit_scale,
                                                                                        small))}
                      for i, (u, w) in enumerate(zip(view.units, view.weights, strict=True))],
        })
    return {"classes": classes, "unit_scale": unit_scale, "template_scale": template_scale,
            "note": dropped_note(f"the first {len(names)} classes", len(names), len(inp.class_names))}


TEMPLATE = """\
{% set cu = sections.class_units %}
<h2 id="class-units">Class → units</h2>
<p>For each class, the hidden units with the largest positive outgoing weight <span class="math">W_out[k, j]</span> (their
incoming weights, shared scale ±{{ cu.unit_scale|num }}), and the class's effective template
<span class="math">W_1ᵀ W_out[k]</span> (the linearisation, ±{{ cu.template_scale|num }}).</p>
{% if cu.note %}<p class="muted">{{ cu.note }} (the scales are over the classes shown)</p>
{% endif %}<table>{% for c in cu.classes %}<tr><td class="name">{{ c.name }}</td>
  <td><img src="{{ c.template }}" alt="effective template of {{ c.name }}"></td>
  <td class="name"><div class="flex">{% for unit in c.units %}<div class="tile"><img src="{{ unit.uri }}" alt="unit {{ unit.unit }}"><br>unit {{ unit.unit }}<br>w = {{ unit.weight|num }}</div>{% endfor %}</div></td></tr>{% endfor %}
</table>
"""  # noqa: E501
