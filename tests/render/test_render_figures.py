"""Matplotlib figures: Figure objects with the expected axes, valid PNG bytes, class names shown literally."""

from __future__ import annotations

import io

import numpy as np
import pytest
from matplotlib.figure import Figure
from PIL import Image

from nnsee.render import (
    confusion_matrix_figure,
    figure_png,
    learning_curves,
    learning_curves_grid,
    outgoing_weights_figure,
    probabilities_figure,
    weights_grid_figure,
)

NAMES = ["$x_1$", "a_b", "<script>", "two\nlines", "$", "T-shirt/top"]
HISTORY = {
    "epoch": [1, 2, 3],
    "train_loss": [1.0, 0.5, 0.3],
    "val_loss": [1.0, 0.6, float("nan")],
    "train_accuracy": [0.5, 0.8, 0.9],
    "val_accuracy": [0.5, 0.7, 0.6],
    "label": "no L2, $lr$_1",
}


def _png_ok(fig: Figure) -> Image.Image:
    data = figure_png(fig, dpi=40)
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    img = Image.open(io.BytesIO(data))
    img.load()
    assert img.width > 50 and img.height > 50
    _no_mathtext(fig)
    return img


def _no_mathtext(fig: Figure) -> None:
    """After drawing: no text on the figure (tick labels included) is parsed as mathtext."""
    for text in fig.findobj(lambda a: hasattr(a, "_preprocess_math")):
        _, is_math = text._preprocess_math(text.get_text())
        assert is_math is False, text.get_text()


def test_learning_curves() -> None:
    fig = learning_curves(HISTORY)
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    assert [len(ax.lines) for ax in fig.axes] == [2, 2]
    _png_ok(fig)


def test_learning_curves_partial_history() -> None:
    fig = learning_curves({"train_loss": np.array([1.0, 0.5])})
    assert len(fig.axes) == 2 and len(fig.axes[0].lines) == 1 and not fig.axes[1].lines
    _png_ok(fig)


def test_learning_curves_grid() -> None:
    fig = learning_curves_grid({"no L2": HISTORY, "L2 $1e-3$": {**HISTORY, "label": None}})
    assert isinstance(fig, Figure) and len(fig.axes) == 4
    _png_ok(fig)
    with pytest.raises(ValueError):
        learning_curves_grid({})


def test_confusion_matrix_figure() -> None:
    m = np.arange(36).reshape(6, 6)
    fig = confusion_matrix_figure(m, NAMES)
    assert len(fig.axes) == 1
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert "two lines" in labels and "<script>" in labels
    _png_ok(fig)
    with pytest.raises(ValueError):
        confusion_matrix_figure(m, NAMES[:2])


def test_bar_figures() -> None:
    fig = outgoing_weights_figure(np.array([1.0, -2.0, 0.0, np.nan, 0.5, -0.1]), NAMES, bias=0.25)
    assert len(fig.axes) == 1 and "0.25" in fig.axes[0].get_title()
    _png_ok(fig)
    fig = probabilities_figure(np.full(6, 1 / 6), NAMES, highlight=2)
    assert len(fig.axes) == 1
    _png_ok(fig)


@pytest.mark.parametrize("shape", [(4, 1, 8, 8), (3, 1, 25, 25), (2, 3, 32, 32), (5, 1, 5, 9)])
def test_weights_grid_figure(shape: tuple[int, ...]) -> None:
    w = np.random.default_rng(0).normal(size=shape)
    fig = weights_grid_figure(w, NAMES[: shape[0]])
    has_colorbar = shape[1] == 1
    assert len(fig.axes) == shape[0] + has_colorbar
    _png_ok(fig)


def test_weights_grid_figure_degenerate_and_per_tile() -> None:
    w = np.zeros((2, 1, 4, 4))
    w[1, 0, 0, 0] = np.nan
    fig = weights_grid_figure(w, shared=True)
    img = np.asarray(fig.axes[0].images[0].get_array())
    assert (img[..., 0] > 200).all()  # all-zero tile is the light centre, not blue
    assert tuple(np.asarray(fig.axes[1].images[0].get_array())[0, 0]) == (0, 255, 0)
    _png_ok(fig)
    fig = weights_grid_figure(np.random.default_rng(1).normal(size=(3, 1, 4, 4)), ["a", "b", "c"], shared=False)
    assert len(fig.axes) == 3 and all("±" in ax.get_title() for ax in fig.axes)
    _png_ok(fig)


PYPLOT_FREE = """
import sys
import numpy as np
from nnsee.render import (confusion_matrix_figure, figure_png, learning_curves, learning_curves_grid,
                          outgoing_weights_figure, probabilities_figure, weights_grid_figure)
history = {"epoch": [1, 2], "train_loss": [1.0, 0.5], "val_loss": [1.0, 0.6], "train_accuracy": [0.5, 0.8],
           "val_accuracy": [0.5, 0.7]}
names = ["a", "b", "c"]
for fig in (learning_curves(history), learning_curves_grid({"x": history}), confusion_matrix_figure(np.eye(3), names),
            outgoing_weights_figure(np.ones(3), names, 0.5), probabilities_figure(np.ones(3) / 3, names, 1),
            weights_grid_figure(np.ones((3, 1, 4, 4)), names)):
    figure_png(fig, dpi=20)
assert "matplotlib.pyplot" not in sys.modules, "pyplot was imported"
"""


def test_no_pyplot_state() -> None:
    """In a fresh interpreter: in this one any Captum test module has already imported pyplot."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", PYPLOT_FREE], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
