"""Explained test images: why each got its score, including the most confident mistakes."""

from __future__ import annotations

from typing import Any

import numpy as np

from nnsee.methods.base import softmax
from nnsee.methods.one_image import CONTRIBUTIONS, explain_image
from nnsee.render import bar_chart_svg, data_uri, symmetric_scale, weight_tile
from nnsee.report.sections.common import ReportInput, class_bars_svg, image_uri, upscale_for


def pick_gallery(probabilities: np.ndarray, labels: np.ndarray, n: int) -> list[tuple[int, str]]:
    """Half: the most confident mistakes; the rest: the most confident correct image of each class in turn."""
    predicted = probabilities.argmax(1)
    confidence = probabilities.max(1)
    wrong = np.flatnonzero(predicted != labels)
    mistakes = wrong[np.argsort(-confidence[wrong], kind="stable")][: n // 2]
    chosen = [(int(i), "confident mistake") for i in mistakes]
    right = np.flatnonzero(predicted == labels)
    by_class = [right[labels[right] == k][np.argsort(-confidence[right[labels[right] == k]], kind="stable")]
                for k in range(probabilities.shape[1])]
    depth = 0
    while len(chosen) < n and any(depth < len(c) for c in by_class):
        chosen += [(int(c[depth]), "correct") for c in by_class if depth < len(c) and len(chosen) < n]
        depth += 1
    return chosen


def gallery_section(inp: ReportInput) -> dict[str, Any] | None:
    if len(inp.splits.test) == 0:
        return None
    if not inp.caps.contributions:
        inp.notes.append(f"why this score: the exact contributions need softmax regression or one hidden layer; this "
                         f"model is {inp.caps.describe()} (nnsee explain --method shows its attribution maps)")
        return None
    model, names = inp.run.model, inp.class_names
    probabilities = softmax(inp.test_logits)
    upscale, small = upscale_for(inp.shape, 84), upscale_for(inp.shape, 56)
    items = []
    for index, why in pick_gallery(probabilities, inp.splits.test.labels, inp.gallery):
        shown = explain_image(model, inp.inputs(inp.splits.test.images, np.array([index]))[0], CONTRIBUTIONS,
                             input_shape=inp.shape)
        e, panels = shown.dot, {p.index: p for p in shown.panels}
        true, predicted = int(inp.splits.test.labels[index]), shown.predicted
        item: dict[str, Any] = {
            "index": index, "why": why, "image": image_uri(inp.splits.test.images[index], upscale),
            "true": names[true], "predicted": names[predicted], "probability": float(e.probabilities[predicted]),
            "probs_svg": class_bars_svg(e.probabilities, names, "probabilities", keep=(predicted, true),
                                        signed=False),
        }
        if shown.panels[0].kind == "class":
            scale = symmetric_scale(np.stack([panels[predicted].map, panels[true].map]))
            item["maps"] = [{"label": f"x ⊙ W[{names[k]}]", "uri": data_uri(weight_tile(panels[k].map, scale,
                                                                                          upscale)),
                             "logit": float(e.logits[k]), "bias": float(e.bias[k]),
                             "sum": float(e.contribution_sum[k])}
                            for k in dict.fromkeys([predicted, true])]
            item["scale"] = scale
        else:
            units = [p.index for p in shown.panels]
            item["votes_svg"] = bar_chart_svg(e.votes[predicted, units], [f"unit {u}" for u in units], width=260,
                                              title=f"votes W_out[{names[predicted]}, j]·h_j of the top units")
            scale = symmetric_scale(np.stack([p.map for p in shown.panels]))
            item["units"] = [{"unit": p.index, "h": p.value, "uri": data_uri(weight_tile(p.map, scale, small)),
                              "split_svg": class_bars_svg(e.votes[:, p.index], names,
                                                          f"unit {p.index}: its vote for each class",
                                                          keep=(predicted, true), width=200, highlight=False)}
                             for p in shown.panels[:4]]
            item["maps"] = [{"label": f"Σ_j votes for {names[k]}", "logit": float(e.logits[k]),
                             "bias": float(e.out_bias[k]), "sum": float(e.contribution_sum[k]), "uri": None}
                            for k in dict.fromkeys([predicted, true])]
            item["scale"] = scale
        items.append(item)
    return {"entries": items, "linear": bool(items) and "units" not in items[0]}


TEMPLATE = """\
{% set g = sections.gallery %}
<h2 id="gallery">Why this score</h2>
{% if g.linear %}<p>For a test image x, <span class="math">score_k = W_k · x + b_k = Σ_i x_i W_k,i + b_k</span>. The maps show the
per-pixel contributions <span class="math">x ⊙ W_k</span> for the predicted and the true class; they sum exactly to
score − bias.</p>{% else %}<p>For a test image x the hidden units fire with <span class="math">h_j = act(W_1[j] · x + b_1[j])</span> and
each casts a vote <span class="math">W_out[k, j] · h_j</span> for class k; <span class="math">score_k = Σ_j votes + b_out[k]</span>. Shown:
the votes of the most important units for the predicted class, and for the first four of them their pixel
contributions <span class="math">x ⊙ W_1[j]</span> and how their vote splits between the classes.</p>{% endif %}
<div class="flex">{% for it in g.entries %}<div class="item{{ ' mistake' if it.why == 'confident mistake' }}">
  <div><b>{{ it.why }}</b> · test image {{ it.index }} · true <b>{{ it.true }}</b> · predicted <b>{{ it.predicted }}</b> ({{ it.probability|pct }})</div>
  <div class="flex"><img src="{{ it.image }}" alt="test image {{ it.index }}">{{ it.probs_svg|svg }}</div>
  <div class="flex">{% for m in it.maps %}<div class="tile">{% if m.uri %}<img src="{{ m.uri }}" alt="{{ m.label }}"><br>{% endif %}{{ m.label }}<br>
    logit {{ m.logit|num(4) }} = {{ m.sum|num(4) }} + bias {{ m.bias|num(4) }}</div>{% endfor %}</div>
  {% if it.votes_svg %}{{ it.votes_svg|svg }}
  <div class="flex">{% for unit in it.units %}<div><div class="tile"><img src="{{ unit.uri }}" alt="unit {{ unit.unit }} contributions"><br>unit {{ unit.unit }}, h = {{ unit.h|num }}</div>{{ unit.split_svg|svg }}</div>{% endfor %}</div>{% endif %}
</div>{% endfor %}</div>
"""  # noqa: E501
