"""Matplotlib figures for notebooks and PNG files: learning curves, confusion matrix, bar charts, weight grids.

Every function returns a new ``matplotlib.figure.Figure`` (Agg canvas, no pyplot, nothing shown, no global state);
:func:`figure_png` encodes one. Names from the data (class names, titles) are shown literally: ``$`` is escaped
so mathtext never runs, and TeX is off.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

import numpy as np

from nnsee.render.bidi import plain
from nnsee.render.colormap import CMAP_NAME, rgb_signed_to_rgb, signed_to_rgb, symmetric_scale

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

TRAIN_COLOUR = "#1f77b4"
VAL_COLOUR = "#d62728"
POSITIVE_COLOUR = "#b2182b"  # red end of RdBu_r: promotes
NEGATIVE_COLOUR = "#2166ac"  # blue end of RdBu_r: suppresses


def _rc() -> AbstractContextManager[Any]:
    import matplotlib

    return matplotlib.rc_context({"text.usetex": False})


def _new_figure(width: float, height: float) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def literal(text: object) -> str:
    """``text`` as matplotlib shows it literally: one line, every ``$`` escaped (no mathtext), no bidi controls."""
    return " ".join(plain(text).split()).replace("$", r"\$")


def figure_png(fig: Figure, dpi: float = 100) -> bytes:
    """The figure as PNG bytes (touches no pyplot state; the figure stays usable)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    if not isinstance(fig.canvas, FigureCanvasAgg):
        FigureCanvasAgg(fig)
    buf = io.BytesIO()
    with _rc():
        fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def _series(history: Mapping[str, Any], key: str) -> np.ndarray | None:
    v = history.get(key)
    if v is None:
        return None
    a = np.asarray(v, dtype=np.float64).ravel()
    return a if a.size else None


def _plot_history(ax_loss: Axes, ax_acc: Axes, history: Mapping[str, Any], label: str | None) -> None:
    from matplotlib.ticker import MaxNLocator

    keys = ("train_loss", "val_loss", "train_accuracy", "val_accuracy")
    n = max((a.size for a in (_series(history, k) for k in keys) if a is not None), default=0)
    epoch = _series(history, "epoch")
    for ax, metric in ((ax_loss, "loss"), (ax_acc, "accuracy")):
        for split, colour, name in (("train", TRAIN_COLOUR, "train"), ("val", VAL_COLOUR, "validation")):
            y = _series(history, f"{split}_{metric}")
            if y is None:
                continue
            x = epoch[: y.size] if epoch is not None and epoch.size >= y.size else np.arange(1, y.size + 1)
            ax.plot(x, y, color=colour, label=name, marker="o" if n <= 30 else None, markersize=3)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(metric)
        ax.grid(True, alpha=0.3)
        if ax.lines:
            ax.legend(loc="best", fontsize="small")
    ax_acc.set_ylim(-0.02, 1.02)
    if label:
        ax_loss.set_title(literal(label) + ": loss")
        ax_acc.set_title(literal(label) + ": accuracy")
    else:
        ax_loss.set_title("loss")
        ax_acc.set_title("accuracy")


def learning_curves(history: Mapping[str, Any]) -> Figure:
    """Loss and accuracy panels (train vs validation) from a history with lists ``epoch``, ``train_loss``,
    ``val_loss``, ``train_accuracy``, ``val_accuracy`` and an optional ``label``; missing series are skipped."""
    with _rc():
        fig = _new_figure(9, 3.5)
        ax_loss, ax_acc = fig.subplots(1, 2)
        _plot_history(ax_loss, ax_acc, history, history.get("label"))
    return fig


def learning_curves_grid(histories: Mapping[str, Mapping[str, Any]]) -> Figure:
    """Several histories side by side (one column each, loss above accuracy), loss axes shared so they compare."""
    if not histories:
        raise ValueError("learning_curves_grid needs at least one history")
    n = len(histories)
    with _rc():
        fig = _new_figure(max(4.0, 3.6 * n), 6.5)
        axes = fig.subplots(2, n, squeeze=False, sharey="row")
        for j, (name, hist) in enumerate(histories.items()):
            _plot_history(axes[0, j], axes[1, j], hist, hist.get("label") or name)
    return fig


def confusion_matrix_figure(matrix: np.ndarray, class_names: Sequence[object]) -> Figure:
    """Confusion matrix (rows: true class, columns: predicted) with counts written in the cells when K <= 30."""
    m = np.asarray(matrix, dtype=np.float64)
    k = m.shape[0]
    if m.ndim != 2 or m.shape[1] != k or len(class_names) != k:
        raise ValueError(f"confusion matrix must be (K, K) with K class names, got {m.shape} and {len(class_names)}")
    names = [literal(c) for c in class_names]
    with _rc():
        size = min(14.0, 2.5 + 0.45 * k)
        fig = _new_figure(size, size)
        ax = fig.add_subplot()
        ax.imshow(m, cmap="Blues", interpolation="nearest", vmin=0, vmax=max(float(np.nanmax(m)) if m.size else 1, 1))
        ax.set_xticks(range(k), names, rotation=90)
        ax.set_yticks(range(k), names)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title("confusion matrix")
        if k <= 30:
            top = np.nanmax(m) if m.size else 0
            for i in range(k):
                for j in range(k):
                    v = m[i, j]
                    txt = f"{int(v)}" if np.isfinite(v) and float(v).is_integer() else f"{v:.2g}"
                    ax.text(
                        j,
                        i,
                        txt,
                        ha="center",
                        va="center",
                        fontsize="x-small",
                        color="white" if top and v > 0.6 * top else "black",
                    )
    return fig


def _bars(ax: Axes, values: np.ndarray, names: list[str], highlight: int | None = None) -> None:
    v = np.asarray(values, dtype=np.float64).ravel()
    colours = [POSITIVE_COLOUR if x >= 0 else NEGATIVE_COLOUR for x in np.nan_to_num(v)]
    y = np.arange(v.size)
    bars = ax.barh(y, np.nan_to_num(v, nan=0.0, posinf=0.0, neginf=0.0), color=colours)
    ax.set_yticks(y, names)
    ax.invert_yaxis()
    ax.axvline(0, color="black", linewidth=0.8)
    for i, (bar, x) in enumerate(zip(bars, v, strict=True)):
        ax.annotate(
            f"{x:.3g}",
            (bar.get_width(), bar.get_y() + bar.get_height() / 2),
            xytext=(3 if x >= 0 else -3, 0),
            textcoords="offset points",
            ha="left" if not x < 0 else "right",
            va="center",
            fontsize="x-small",
            fontweight="bold" if i == highlight else "normal",
        )
    if highlight is not None and 0 <= highlight < v.size:
        ax.get_yticklabels()[highlight].set_fontweight("bold")
    ax.margins(x=0.2)


def outgoing_weights_figure(weights: np.ndarray, class_names: Sequence[object], bias: float | None = None) -> Figure:
    """Horizontal bar chart of one hidden unit's outgoing weights to each class (red promotes, blue suppresses)."""
    w = np.asarray(weights, dtype=np.float64).ravel()
    if len(class_names) != w.size:
        raise ValueError(f"got {w.size} weights and {len(class_names)} class names")
    with _rc():
        fig = _new_figure(4.5, 1.0 + 0.3 * w.size)
        ax = fig.add_subplot()
        _bars(ax, w, [literal(c) for c in class_names])
        ax.set_xlabel("outgoing weight")
        ax.set_title("outgoing weights" + (f" (bias {float(bias):.3g})" if bias is not None else ""))
    return fig


def probabilities_figure(probs: np.ndarray, class_names: Sequence[object], highlight: int | None = None) -> Figure:
    """Horizontal bar chart of class probabilities in [0, 1]; ``highlight`` (e.g. the true class) is bold."""
    p = np.asarray(probs, dtype=np.float64).ravel()
    if len(class_names) != p.size:
        raise ValueError(f"got {p.size} probabilities and {len(class_names)} class names")
    with _rc():
        fig = _new_figure(4.5, 1.0 + 0.3 * p.size)
        ax = fig.add_subplot()
        _bars(ax, p, [literal(c) for c in class_names], highlight)
        ax.set_xlim(0, 1.15)
        ax.set_xlabel("probability")
        ax.set_title("probabilities")
    return fig


def weights_grid_figure(
    weights: np.ndarray, titles: Sequence[object] | None = None, shared: bool = True, ncols: int | None = None
) -> Figure:
    """Weight images (N, C, H, W) as a grid: C=1 on ``RdBu_r`` centred at 0, C=3 as colour images.

    ``shared=True``: one symmetric scale and one colour bar stating it; ``False``: each tile its own scale, printed
    in its title. Pixels are the same as :func:`nnsee.render.tiles.weight_tile` (NaN marked, scale 0 is neutral).
    """
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    w = np.asarray(weights)
    if w.ndim == 3:
        w = w[:, None]
    if w.ndim != 4 or w.shape[1] not in (1, 3):
        raise ValueError(f"weights must have shape (N, C, H, W) with C = 1 or 3, got {w.shape}")
    n = w.shape[0]
    if titles is not None and len(titles) != n:
        raise ValueError(f"got {len(titles)} titles for {n} weight images")
    ncols = max(1, min(ncols or math.ceil(math.sqrt(n)) or 1, max(n, 1)))
    nrows = max(1, math.ceil(n / ncols))
    common = symmetric_scale(w) if shared else None
    with _rc():
        fig = _new_figure(1.0 + 1.6 * ncols, 0.6 + 1.8 * nrows)
        axes = []
        for i in range(n):
            ax = fig.add_subplot(nrows, ncols, i + 1)
            s = common if common is not None else symmetric_scale(w[i])
            rgb = signed_to_rgb(w[i, 0], s) if w.shape[1] == 1 else rgb_signed_to_rgb(w[i], s)
            ax.imshow(rgb, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            label = literal(titles[i]) if titles is not None else ""
            if not shared:
                label = f"{label} ±{s:.3g}".strip()
            ax.set_title(label, fontsize="small")
            axes.append(ax)
        if shared and axes and w.shape[1] == 3:
            fig.suptitle(f"colour images: 0.5 + 0.5·w/s per channel, shared s = {common or 0.0:.3g}", fontsize="small")
        elif shared and axes:
            s = common or 0.0
            sm = ScalarMappable(norm=Normalize(-s, s) if s > 0 else Normalize(-1, 1), cmap=colormaps[CMAP_NAME])
            cb = fig.colorbar(sm, ax=axes, shrink=0.8)
            cb.set_label(f"weight (shared scale ±{s:.3g})")
            if s == 0:
                cb.set_ticks([0.0])
        elif not shared:
            fig.suptitle("per-tile scales (tiles do not compare)", fontsize="small")
    return fig
