"""Overview: what was trained on what, how well, sample images per class, learning curves, confusion matrix."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
from torch import nn

from nnsee.render import learning_curves_svg
from nnsee.report.sections.common import ReportInput, images_grid_uri, upscale_for
from nnsee.train.evaluate import predict_logits, scores

_NOT_OPTIONS = ("name", "input_shape", "n_classes")  # spec keys every model has, shown elsewhere on the page


def overview(inp: ReportInput, samples_per_class: int = 8) -> dict[str, Any]:
    run, splits = inp.run, inp.splits
    config = run.config
    test = run.metrics.get("test") or scores(predict_logits(run.model, inp.test_std), splits.test.labels,
                                             splits.test.class_names)
    standardizer = run.standardizer
    facts = [
        ("model", describe_model(run.model, run.meta.get("model"))),
        ("data", str(run.data_spec.get("spec", run.data_spec.get("source", "?")) if run.data_spec else "?")),
        ("images", f"{'×'.join(str(s) for s in inp.shape)}; train {len(splits.train)}, "
                   f"validation {len(splits.val)}, test {len(splits.test)}"),
        ("standardization", standardizer.describe() if standardizer is not None else "none stored: raw pixels"),
        ("training", f"{config.get('optimizer')} lr {_g(config.get('lr'))}, L2 λ = {_g(config.get('l2'))}, "
                     f"{run.epoch} epochs, batch {config.get('batch_size')} ({run.meta.get('status', '?')})"),
    ]
    samples = []
    upscale = max(1, upscale_for(inp.shape, 40))
    for k, name in enumerate(inp.class_names):
        index = np.flatnonzero(splits.train.labels == k)[:samples_per_class]
        if len(index):
            uri = images_grid_uri(splits.train.images[index], samples_per_class, upscale)
            samples.append({"name": name, "uri": uri})
    history = run.history
    curves = learning_curves_svg(history) if history.get("epoch") else None
    matrix = np.asarray(test["confusion_matrix"]) if test.get("n") else None
    return {
        "facts": facts,
        "samples": samples,
        "curves": curves,
        "test": test,
        "val": run.metrics.get("val"),
        "confusion": _confusion_rows(matrix, inp.class_names) if matrix is not None else None,
    }


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
    """Rows of the confusion matrix with a shade per cell: share of the row's images (0..1)."""
    rows = []
    for i, name in enumerate(names):
        total = max(int(matrix[i].sum()), 1)
        cells = [{"count": int(v), "share": float(v) / total, "diagonal": i == j} for j, v in enumerate(matrix[i])]
        rows.append({"name": name, "cells": cells, "accuracy": float(matrix[i, i]) / total})
    return rows


TEMPLATE = """\
{% set ov = sections.overview %}
<h2 id="overview">Overview</h2>
<table>{% for key, value in ov.facts %}<tr><th class="name">{{ key }}</th><td class="name">{{ value }}</td></tr>{% endfor %}
  <tr><th class="name">test accuracy</th><td class="name">{{ ov.test.accuracy|pct }} on {{ ov.test.n }} images</td></tr>
  {% if ov.val %}<tr><th class="name">validation accuracy</th><td class="name">{{ ov.val.accuracy|pct }} on {{ ov.val.n }} images</td></tr>{% endif %}
</table>
<h3>Training images, by class</h3>
<table>{% for s in ov.samples %}<tr><td class="name">{{ s.name }}</td><td class="name"><img src="{{ s.uri }}" alt="examples of {{ s.name }}"></td></tr>{% endfor %}</table>
{% if ov.curves %}<h3>Learning curves</h3>
<p class="muted">Training loss is the mean over each epoch's mini-batches; validation is scored after each epoch.
A validation curve that turns up while training keeps falling is overfitting.</p>
<div class="flex">{{ ov.curves[0]|svg }}{{ ov.curves[1]|svg }}</div>{% endif %}
{% if ov.confusion %}<h3>Confusion matrix (test; rows: true class, columns: predicted)</h3>
<table>
  <tr><th></th>{% for n in class_names %}<th title="{{ n }}">{{ loop.index0 }}</th>{% endfor %}<th>accuracy</th></tr>
  {% for row in ov.confusion %}<tr><td class="name">{{ loop.index0 }} · {{ row.name }}</td>
    {% for c in row.cells %}<td style="background: rgba({{ '33,102,172' if c.diagonal else '178,24,43' }},{{ '%.2f'|format(c.share * 0.85) }})">{{ c.count }}</td>{% endfor %}
    <td>{{ row.accuracy|pct }}</td></tr>{% endfor %}
</table>{% endif %}
"""  # noqa: E501
