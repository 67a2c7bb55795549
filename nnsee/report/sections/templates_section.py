"""Class templates ("visualizing the W's"): each class's weights as an image, or the linearisation for MLPs."""

from __future__ import annotations

from typing import Any

import numpy as np

from nnsee.methods import class_templates, effective_templates
from nnsee.render import colorbar, data_uri, grid, png_bytes, symmetric_scale, weight_tile
from nnsee.report.sections.common import ReportInput, dropped_note, upscale_for

MAX_TEMPLATES = 100  # tiles on the page and in templates.png; more classes show the first ones, with a note


def templates_section(inp: ReportInput) -> dict[str, Any] | None:
    model, shape = inp.run.model, inp.shape
    if not inp.caps.templates:
        inp.notes.append(f"class templates: effective templates applies to fully connected chains; this model is "
                         f"{inp.caps.describe()}")
        return None
    exact = inp.caps.dense_layers == 1
    weights = class_templates(model, shape) if exact else effective_templates(model, shape)
    upscale = upscale_for(shape, 112)
    shared = symmetric_scale(weights)
    tiles = []
    names = inp.class_names[:MAX_TEMPLATES]
    for k, name in enumerate(names):
        own = symmetric_scale(weights[k])
        tiles.append({
            "name": name,
            "shared_uri": data_uri(weight_tile(weights[k], shared, upscale)),
            "own_uri": data_uri(weight_tile(weights[k], own, upscale)),
            "own_scale": own,
        })
    shown = weights[: len(names)]
    figure = grid([weight_tile(w, shared, upscale) for w in shown], ncols=min(len(shown), 10),
                  captions=names, note=f"shared scale ±{shared:.3g}")
    return {
        "exact": exact,
        "tiles": tiles,
        "scale": shared,
        "colorbar": data_uri(colorbar(shared)),
        "png": figure,
        "rgb": shape[0] == 3,
        "note": dropped_note(f"the templates of the first {len(names)} classes", len(names), len(inp.class_names)),
        "mean_abs": float(np.abs(weights).mean()),
    }


def templates_png(context: dict[str, Any]) -> dict[str, bytes]:
    """``templates.png`` beside the page: every template on the shared scale, for slides and notebooks."""
    return {"templates.png": png_bytes(context.pop("png"))}


TEMPLATE = """\
{% set t = sections.templates %}
<h2 id="templates">{% if t.exact %}Class templates: each output unit's weights W[k] as an image{% else %}Effective class templates (a linearisation){% endif %}</h2>
{% if t.exact %}<p>The score of class k is the dot product <span class="math">score_k = W_k · x + b_k</span>: red pixels raise it where the
input is positive, blue pixels lower it. Shared scale ±{{ t.scale|num }} (red +, blue −, the neutral colour is 0).</p>
{% else %}<p>This network has hidden layers, so a class has no single template. Shown is
<span class="math">(W_out · … · W_1)[k]</span>, the product of the weight matrices that ignores the nonlinearities: the
template the network would have if every hidden unit were linear. Shared scale ±{{ t.scale|num }}.</p>{% endif %}
{% if t.note %}<p class="muted">{{ t.note }} (here and in templates.png; the shared scale is over every class)</p>
{% endif %}<div class="flex">{% for tile in t.tiles %}<div class="tile"><img src="{{ tile.shared_uri }}" alt="template of {{ tile.name }}"><br>{{ tile.name }}</div>{% endfor %}</div>
<p><img src="{{ t.colorbar }}" alt="colour scale"></p>
<details><summary>Each template on its own scale</summary><div class="flex">
{% for tile in t.tiles %}<div class="tile"><img src="{{ tile.own_uri }}" alt="template of {{ tile.name }}, own scale"><br>{{ tile.name }} ±{{ tile.own_scale|num }}</div>{% endfor %}
</div></details>
"""  # noqa: E501
