"""Overview: what was trained on what, how well, sample images per class, learning curves, confusion matrix."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
from torch import nn

from nnsee.methods.confusion_cells import top_confusions
from nnsee.models.adopted import resize_rule
from nnsee.render import learning_curves_svg
from nnsee.render.bidi import isolated
from nnsee.report.sections.common import MAX_CLASSES, ReportInput, dropped_note, images_grid_uri, upscale_for
from nnsee.report.sections.confusion_section import cell_page
from nnsee.train.evaluate import scores

_NOT_OPTIONS = ("name", "input_shape", "n_classes")  # spec keys every model has, shown elsewhere on the page


def overview(inp: ReportInput, samples_per_class: int = 8) -> dict[str, Any]:
    run, splits = inp.run, inp.splits
    config = run.config
    test = run.metrics.get("test") or scores(inp.test_logits, splits.test.labels, splits.test.class_names)
    standardizer = run.standardizer
    facts = [
        ("model", describe_model(run.model, run.meta.get("model"))),
        ("data", isolated(run.data_spec.get("spec", run.data_spec.get("source", "?")) if run.data_spec else "?")),
        ("images", f"{'×'.join(str(s) for s in inp.shape)} ({_RESIZE_SAID[resize_rule(run.meta)]}); "
                   f"train {len(splits.train)}, validation {len(splits.val)}, test {len(splits.test)}"),
        ("standardization", standardizer.describe() if standardizer is not None else "none stored: raw pixels"),
        ("training", _training(run.meta, config, run.epoch)),
    ]
    samples = []
    upscale = max(1, upscale_for(inp.shape, 40))
    names = inp.class_names
    for k, name in enumerate(names[:MAX_CLASSES]):
        index = np.flatnonzero(splits.train.labels == k)[:samples_per_class]
        if len(index):
            uri = images_grid_uri(splits.train.images[index], samples_per_class, upscale)
            samples.append({"name": name, "uri": uri})
    history = run.history
    curves = learning_curves_svg(history) if history.get("epoch") else None
    matrix = np.asarray(test["confusion_matrix"]) if test.get("n") else None
    full = matrix is not None and len(names) <= MAX_CLASSES
    return {
        "facts": facts,
        "samples": samples,
        "samples_note": dropped_note(f"the first {MAX_CLASSES} classes", MAX_CLASSES, len(names)),
        "curves": curves,
        "test": test,
        "val": run.metrics.get("val"),
        "confusion": _confusion_rows(matrix, names) if full else None,
        "summary": _confusion_summary(matrix, names) if matrix is not None and not full else None,
    }


#: How the overview says each resize rule of nnsee/data/image_decode.py brought a file to the input size.
_RESIZE_SAID = {"square": "files: centre square, resized", "torchvision": "files: shorter side to size·256/224, "
                "then the centre crop, as torchvision's Resize + CenterCrop"}


def _training(meta: dict[str, Any], config: dict[str, Any], epoch: int | None) -> str:
    """How the model was trained: nnsee's settings, or for an adopted model (no settings recorded) that it was
    trained elsewhere and brought in with ``nnsee adopt``."""
    if not config.get("optimizer") and (meta.get("model") or {}).get("kind") == "adopted":
        epochs = [e for e in (meta.get("history") or {}).get("epoch") or [] if e]
        if epochs:
            return (f"trained in your own loop, recorded with nnsee.track ({len(epochs)} epochs; "
                    "its training settings are not known to nnsee)")
        return "trained elsewhere, adopted with nnsee adopt (its training settings are not known to nnsee)"
    return (f"{config.get('optimizer')} lr {_g(config.get('lr'))}, L2 λ = {_g(config.get('l2'))}, "
            f"{epoch} epochs, batch {config.get('batch_size')} ({meta.get('status', '?')})")


def describe_model(model: nn.Module, spec: dict[str, Any] | None) -> str:
    """``name (option=value, ...)`` from the spec that built the model, every option but those all models share;
    for a module of the user's own (no spec), its class, its layers by type and its parameter count."""
    if spec:
        options = ", ".join(f"{k}={v}" for k, v in spec.items() if k not in _NOT_OPTIONS)
        name = str(spec.get("name", type(model).__name__))
        return f"{name} ({options})" if options else name
    layers = Counter(type(m).__name__ for m in model.modules() if next(m.children(), None) is None)
    count = sum(p.numel() for p in model.parameters())
    parts = ", ".join(f"{n} {kind}" for kind, n in layers.items())
    return f"your own module {type(model).__name__} ({parts}; {count:,} parameters)"


def _g(value: Any) -> str:
    return "?" if value is None else f"{value:g}"


def _confusion_rows(matrix: np.ndarray, names: list[str]) -> list[dict[str, Any]]:
    """Rows of the confusion matrix with a shade per cell (share of the row's images, 0..1) and, for a non-empty
    cell, the link to its drill-down page."""
    rows = []
    for i, name in enumerate(names):
        total = max(int(matrix[i].sum()), 1)
        cells = [{"count": int(v), "share": float(v) / total, "diagonal": i == j,
                  "href": cell_page(i, j) if v else None} for j, v in enumerate(matrix[i])]
        rows.append({"name": name, "cells": cells, "accuracy": float(matrix[i, i]) / total})
    return rows


def _confusion_summary(matrix: np.ndarray, names: list[str], top: int = MAX_CLASSES) -> dict[str, Any]:
    """For a matrix too large to show: its ``top`` largest off-diagonal counts (with their share of the row) and
    the ``top`` classes of lowest accuracy among those with test images, worst first, each with a note when
    something is left out. Each confusion links to its drill-down page."""
    totals = np.maximum(matrix.sum(1), 1)
    confusions = [{"true": names[i], "predicted": names[j], "count": int(matrix[i, j]),
                   "share": float(matrix[i, j]) / float(totals[i]), "href": cell_page(i, j)}
                  for i, j in top_confusions(matrix, top)]
    pairs = int(np.count_nonzero(matrix) - np.count_nonzero(np.diagonal(matrix)))  # off-diagonal, non-empty
    counts = matrix.sum(1)
    scored = np.flatnonzero(counts > 0)  # a class with no test images has no accuracy to rank
    worst = scored[np.argsort(np.diagonal(matrix)[scored] / counts[scored], kind="stable")[:top]]
    return {
        "confusions": confusions,
        "confusions_note": dropped_note(f"the {len(confusions)} largest", len(confusions), pairs,
                                        " pairs of a true and a predicted class with mistakes"),
        "worst": [{"name": names[k], "accuracy": float(matrix[k, k] / counts[k]), "n": int(counts[k])} for k in worst],
        "worst_note": dropped_note(f"the {len(worst)} classes with the lowest accuracy", len(worst), len(scored),
                                   " classes with test images"),
        "classes": len(names),
    }


TEMPLATE = """\
{% set ov = sections.overview %}
<h2 id="overview">Overview</h2>
<table>{% for key, value in ov.facts %}<tr><th class="name">{{ key }}</th><td class="name">{{ value }}</td></tr>{% endfor %}
  <tr><th class="name">test accuracy</th><td class="name">{{ ov.test.accuracy|pct }} on {{ ov.test.n }} images</td></tr>
  {% if ov.val %}<tr><th class="name">validation accuracy</th><td class="name">{{ ov.val.accuracy|pct }} on {{ ov.val.n }} images</td></tr>{% endif %}
</table>
<h3>Training images, by class</h3>
{% if ov.samples_note %}<p class="muted">{{ ov.samples_note }}</p>
{% endif %}<table>{% for s in ov.samples %}<tr><td class="name">{{ s.name }}</td><td class="name"><img src="{{ s.uri }}" alt="examples of {{ s.name }}"></td></tr>{% endfor %}</table>
{% if ov.curves %}<h3>Learning curves</h3>
<p class="muted">Training loss is the mean over each epoch's mini-batches; validation is scored after each epoch.
A validation curve that turns up while training keeps falling is overfitting.</p>
<div class="flex">{{ ov.curves[0]|svg }}{{ ov.curves[1]|svg }}</div>{% endif %}
{% if ov.confusion %}<h3>Confusion matrix (test; rows: true class, columns: predicted)</h3>
<p class="muted">Click a count to see those test images, each with a map of why it got the predicted class.</p>
<table>
  <tr><th></th>{% for n in class_names %}<th title="{{ n }}">{{ loop.index0 }}</th>{% endfor %}<th>accuracy</th></tr>
  {% for row in ov.confusion %}<tr><td class="name">{{ loop.index0 }} · {{ row.name }}</td>
    {% for c in row.cells %}<td style="background: rgba({{ '33,102,172' if c.diagonal else '178,24,43' }},{{ '%.2f'|format(c.share * 0.85) }})">{% if c.href %}<a class="cell" href="{{ c.href }}" title="true {{ row.name }}, predicted {{ class_names[loop.index0] }}: see the images">{{ c.count }}</a>{% else %}{{ c.count }}{% endif %}</td>{% endfor %}
    <td>{{ row.accuracy|pct }}</td></tr>{% endfor %}
</table>{% endif %}{% if ov.summary %}{% set sm = ov.summary %}<h3>Top confusions (test)</h3>
<p class="muted">{{ sm.classes }} classes are too many for a confusion matrix on one page. Listed: the most frequent
mistakes, each with its share of the true class's test images{% if sm.confusions_note %} ({{ sm.confusions_note }}){% endif %}.</p>
<table><tr><th class="name">true class</th><th class="name">predicted as</th><th>images</th><th>share of the class</th></tr>
{% for c in sm.confusions %}<tr><td class="name">{{ c.true }}</td><td class="name">{{ c.predicted }}</td><td><a class="cell" href="{{ c.href }}">{{ c.count }}</a></td><td>{{ c.share|pct }}</td></tr>{% endfor %}</table>
<h3>Accuracy per class (test), worst first</h3>
{% if sm.worst_note %}<p class="muted">{{ sm.worst_note }}</p>{% endif %}
<table><tr><th class="name">class</th><th>accuracy</th><th>images</th></tr>
{% for w in sm.worst %}<tr><td class="name">{{ w.name }}</td><td>{{ w.accuracy|pct }}</td><td>{{ w.n }}</td></tr>{% endfor %}</table>{% endif %}
"""  # noqa: E501
