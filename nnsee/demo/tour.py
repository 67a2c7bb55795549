"""The guided tour (``tour.html``): the steps of :data:`nnsee.lessons.OUTLINE` in order, each with this demo's own
figures, one paragraph written from its numbers (:mod:`nnsee.lessons.narrate`), the step's idea and questions, and a
link into the report section that shows it.

It lives in the demo (the interface layer), not in :mod:`nnsee.lessons`: the lessons hold the outline and the
narration, which the notebooks share; the tour only lays them out as a page beside the demo's reports.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nnsee.demo.figures import attribution_maps, images_uri, weights_uri
from nnsee.demo.page import render
from nnsee.lessons import OUTLINE, Step, narrate
from nnsee.render import bar_chart_svg, write_atomic

Figure = dict[str, str]  # {"src": data URI} or {"svg": inline SVG}, with a "caption"


@dataclass
class TourStep:
    """One step as the page shows it: its outline entry, the paragraph, the figures and the report link."""

    step: Step
    narration: narrate.Narration | None
    figures: list[Figure] = field(default_factory=list)
    link: str | None = None
    missing: str | None = None


def _raw(run: Any, splits: Any, index: int) -> np.ndarray:
    return np.asarray(splits.test.images[[index]], dtype=np.float32)[0]


def _templates(run: Any, splits: Any) -> tuple[narrate.Narration, list[Figure]]:
    from nnsee.methods.templates import class_templates

    n = narrate.templates(run, splits)
    return n, [{"src": weights_uri(class_templates(run.model, run.input_shape), run.class_names, upscale=3),
                "caption": "W_k as images: red where ink raises class k's score, blue where it lowers it"}]


def _hidden_units(run: Any, splits: Any) -> tuple[narrate.Narration, list[Figure]]:
    from nnsee.methods.hidden_units import incoming_weights, outgoing_weights

    n = narrate.hidden_units(run, splits)
    j = n.numbers["unit"]
    w_in = incoming_weights(run.model, run.input_shape)[[j]]
    w_out = outgoing_weights(run.model)[:, j]
    return n, [{"src": weights_uri(w_in, ncols=1, upscale=5), "caption": f"unit {j}'s incoming weights W_1[{j}]"},
               {"svg": bar_chart_svg(w_out, run.class_names, width=300, title=f"outgoing votes W_out[:, {j}]"),
                "caption": "how much h_j = 1 adds to each class's score"},
               {"svg": bar_chart_svg(n.numbers["dp"], run.class_names, width=300, title="mean change of p(class), "
                                     f"unit {j} off"),
                "caption": f"over {n.numbers['n_images']} validation images"}]


def _dot_product(run: Any, splits: Any) -> tuple[narrate.Narration, list[Figure]]:
    from nnsee.methods.contributions import explain_linear

    n = narrate.dot_product(run, splits)
    i, k = n.numbers["index"], n.numbers["predicted"]
    e = explain_linear(run.model, run.standardize(splits.test.images[[i]])[0], run.input_shape)
    return n, [{"src": images_uri(_raw(run, splits, i)[None], upscale=5), "caption": f"test image {i}"},
               {"src": weights_uri(e.contributions[[k]], ncols=1, upscale=5),
                "caption": f"x_i · W_{k},i: each pixel's share of the {run.class_names[k]} score"}]


def _standardization(study: Any) -> tuple[narrate.Narration, list[Figure]]:
    n = narrate.standardization(study)
    figures = [{"src": weights_uri(r.templates, study.class_names, upscale=2),
                "caption": f"templates learned with '{r.mode}' (test {100 * r.test_accuracy:.1f}%)"}
               for r in study.results]
    return n, figures


def _overfitting(study: Any) -> tuple[narrate.Narration, list[Figure]]:
    from nnsee.render import figure_png, learning_curves_grid

    n = narrate.overfitting(study)
    small = n.numbers["per_class"]
    runs = sorted((r for r in study.runs if r.per_class == small), key=lambda r: r.l2)
    plain, strong = runs[0], runs[-1]
    curves = figure_png(learning_curves_grid({f"λ = {r.l2:g}": r.history for r in (plain, strong)}), dpi=70)
    from nnsee.render import data_uri

    return n, [{"src": weights_uri(plain.incoming_weights[:8], ncols=8, upscale=2),
                "caption": f"{small} per class, no L2: the first 8 units' weights"},
               {"src": weights_uri(strong.incoming_weights[:8], ncols=8, upscale=2),
                "caption": f"{small} per class, λ = {strong.l2:g}"},
               {"src": data_uri(curves), "caption": "loss and accuracy, training vs validation"}]


def _cnn(run: Any, splits: Any) -> tuple[narrate.Narration, list[Figure]]:
    from nnsee.methods.attribution.filters import first_layer_filters

    n = narrate.cnn(run, splits)
    i = n.numbers["index"]
    heat = narrate.occlusion_map(run, splits, i, n.numbers["window"])
    return n, [{"src": weights_uri(first_layer_filters(run.model), ncols=8, upscale=6),
                "caption": "the first layer's filters"},
               {"src": images_uri(_raw(run, splits, i)[None], upscale=5), "caption": f"test image {i}"},
               {"src": weights_uri(heat[None, None], ncols=1, upscale=5),
                "caption": "occlusion: how much covering each pixel lowers the true class's score (red: a drop)"}]


def _attribution(run: Any, splits: Any) -> tuple[narrate.Narration, list[Figure]]:
    i = narrate.first_correct(run, splits)
    label = int(np.asarray(splits.test.labels)[i])
    scores, trained, randomized = attribution_maps(run.model, run.standardize(splits.test.images[[i]]), label)
    n = narrate.attribution(scores, i, run.class_names[label])
    names = list(trained)
    figures = [{"src": images_uri(_raw(run, splits, i)[None], upscale=5), "caption": f"test image {i}"}]
    for m in names:
        figures.append({"src": weights_uri(np.stack([trained[m], randomized[m]])[:, None], ["trained", "random"],
                                           ncols=2, upscale=4 if trained[m].shape[-1] > 10 else 16),
                        "caption": f"{m}: ρ = {scores[m]['spearman']:.2f}"})
    return n, figures


RUN_FIGURES: dict[str, Callable[[Any, Any], tuple[narrate.Narration, list[Figure]]]] = {
    "templates": _templates, "hidden-units": _hidden_units, "dot-product": _dot_product, "cnn": _cnn,
    "attribution": _attribution}
STUDY_FIGURES: dict[str, Callable[[Any], tuple[narrate.Narration, list[Figure]]]] = {
    "standardization": _standardization, "overfitting": _overfitting}


def tour_steps(entries: Sequence[Any], out: Path) -> list[TourStep]:
    """Every step of OUTLINE, in order, computed from the demo entry named by its ``run`` (a step whose run is
    missing says so instead)."""
    by_title = {e.title: e for e in entries}
    steps = []
    for s in OUTLINE:
        entry = by_title.get(s.run)
        if entry is None:
            steps.append(TourStep(s, None, missing=f"this demo has no {s.run} run"))
            continue
        if s.key in RUN_FIGURES:
            narration, figures = RUN_FIGURES[s.key](entry.data["run"], entry.data["splits"])
        else:
            narration, figures = STUDY_FIGURES[s.key](entry.data["study"])
        link = entry.report.relative_to(out).as_posix() + (f"#{s.anchor}" if s.anchor else "")
        steps.append(TourStep(s, narration, figures, link))
    return steps


TEMPLATE = """{% extends "frame" %}{% block body %}
<h1>A guided tour: how these networks see</h1>
<p class="muted">{{ steps|length }} steps of the lecture, each with the figures and numbers of the runs this demo
trained. <a href="index.html">Back to all reports</a></p>
<nav>{% for t in steps %}<a href="#{{ t.step.key }}">{{ loop.index }}. {{ t.step.key }}</a>{% endfor %}</nav>
{% for t in steps %}
<section id="{{ t.step.key }}">
<h2>{{ loop.index }}. {{ t.step.title }}</h2>
{% if t.missing %}<p class="muted">{{ t.missing }}.</p>{% else %}
<div class="figs">{% for f in t.figures %}<figure>{% if f.src %}<img src="{{ f.src }}" alt="{{ f.caption }}">{% else
%}{{ f.svg|svg }}{% endif %}<figcaption>{{ f.caption }}</figcaption></figure>{% endfor %}</div>
<p class="story">{{ t.narration.text }}</p>{% endif %}
<p class="idea">{{ t.step.idea }}</p>
<p><b>Questions</b></p><ul>{% for q in t.step.questions %}<li>{{ q }}</li>{% endfor %}</ul>
{% if t.link %}<p><a class="section-link" href="{{ t.link }}">See it in the {{ t.step.run }} report →</a></p>{% endif %}
</section>
{% endfor %}
{% endblock %}"""


def write_tour(entries: Sequence[Any], out: str | Path) -> Path:
    """Write ``out/tour.html`` from the demo's ``entries``; returns its path."""
    out = Path(out)
    html = render(TEMPLATE, title="demo · guided tour", steps=tour_steps(entries, out))
    return write_atomic(out / "tour.html", html.encode("utf-8"))
