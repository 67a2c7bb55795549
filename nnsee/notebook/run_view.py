"""A run at a glance: its data, its model, its accuracies and its learning curves (the report's SVG charts)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from nnsee.notebook.html import box, number, percent, resized_svg, table, text
from nnsee.render import learning_curves_svg

if TYPE_CHECKING:
    from torch import nn

    from nnsee.train.fit import FitResult
    from nnsee.train.run import Run

CHART_WIDTH = 300


def run_html(run: Run, curves: bool = True) -> str:
    """The run folder's summary: data (spec and split sizes), model (name, options, parameters), epochs, validation
    and test accuracy, and the loss and accuracy curves per epoch (``curves=False`` leaves them out)."""
    meta = run.meta
    data = meta.get("data") or {}
    counts = data.get("counts") or {}
    sizes = " / ".join(f"{counts[k]:,} {k}" for k in ("train", "val", "test") if k in counts)
    spec = data.get("spec") or data.get("kind") or "—"
    rows = [("data", f"{text(spec)}" + (f" ({sizes})" if sizes else "")),
            ("classes", f"{len(run.class_names)}: " + ", ".join(text(n) for n in run.class_names[:12])
             + (" …" if len(run.class_names) > 12 else "")),
            ("model", _model(meta.get("model"), run.model))]
    return _summary(f"Run {text(run.path.name)}", rows, run.epoch, run.metrics, run.history, curves)


def fit_html(result: FitResult, curves: bool = True) -> str:
    """What :func:`nnsee.train.fit` returned: model, status, epochs, accuracies and learning curves."""
    rows = [("model", _model(None, result.model)), ("status", text(result.status))]
    if result.out is not None:
        rows.append(("run folder", text(result.out)))
    return _summary("Training result", rows, result.epoch, result.metrics, result.history, curves)


def _model(spec: Mapping[str, Any] | None, model: nn.Module) -> str:
    n = sum(p.numel() for p in model.parameters())
    if spec and spec.get("name"):
        options = {k: v for k, v in spec.items() if k not in ("name", "input_shape", "n_classes")}
        shown = text(spec["name"]) + "".join(f", {text(k)} {text(v)}" for k, v in options.items())
    else:
        shown = text(type(model).__name__)
    return f"{shown} ({n:,} parameters)"


def _summary(title: str, rows: list[tuple[str, str]], epoch: int | None, metrics: Mapping[str, Any],
             history: Mapping[str, Any], curves: bool) -> str:
    scores = [(split, (metrics.get(split) or {}).get("accuracy"), (metrics.get(split) or {}).get("loss"))
              for split in ("val", "test") if metrics.get(split)]
    rows = [*rows, ("epochs", str(epoch if epoch is not None else len(history.get("epoch", []))))]
    rows += [(f"{'validation' if split == 'val' else 'test'} accuracy",
              f'<b data-metric="{split}-accuracy">{percent(acc)}</b> (loss {number(loss)})')
             for split, acc, loss in scores]
    facts = table(["", ""], [(name, value) for name, value in rows])
    charts = ""
    if curves and len(history.get("epoch", [])) == 1:
        charts = "<div>one epoch: no learning curves to draw</div>"
    elif curves and len(history.get("epoch", [])) > 1:
        loss, accuracy = learning_curves_svg(history)
        charts = f'<div style="display:flex;gap:6px">{resized_svg(loss, CHART_WIDTH)}' \
                 f"{resized_svg(accuracy, CHART_WIDTH)}</div>"
    return box(title, facts, charts, kind="run")
