"""The one table of what displays itself in a notebook: type → renderer, read by :func:`nnsee.notebook.show` and by
the IPython ``text/html`` formatters that importing :mod:`nnsee.notebook` registers.

Types and renderers are named by strings (``module``, ``class``) → ``module:function``, so neither registering the
formatters nor ``import nnsee.notebook`` imports torch or the rendering code; a renderer's module is imported the
first time an object of its type is shown. A renderer takes the object and keyword options and returns HTML text.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

Renderer = Callable[..., str]

#: (module, class name) of a displayable type → "module:function" of its renderer.
RENDERERS: dict[tuple[str, str], str] = {
    ("nnsee.train.run", "Run"): "nnsee.notebook.run_view:run_html",
    ("nnsee.train.fit", "FitResult"): "nnsee.notebook.run_view:fit_html",
    ("nnsee.methods.one_image", "ImageExplanation"): "nnsee.notebook.explanation_view:explanation_html",
    ("nnsee.methods.contributions", "LinearExplanation"): "nnsee.notebook.explanation_view:dot_html",
    ("nnsee.methods.contributions", "MLPExplanation"): "nnsee.notebook.explanation_view:dot_html",
    ("nnsee.methods.attribution.method", "Attribution"): "nnsee.notebook.attribution_view:attribution_html",
    ("nnsee.methods.hidden_units", "UnitCard"): "nnsee.notebook.units_view:unit_card_html",
    ("nnsee.studies.overfit", "OverfitStudy"): "nnsee.notebook.studies_view:overfit_html",
    ("nnsee.studies.standardization", "StandardizationStudy"): "nnsee.notebook.studies_view:standardization_html",
}

#: Renderers :func:`show` picks by the value's form rather than its type (no formatter: too broad to claim).
#: ``cards``: a list of UnitCard; ``weights``: an array (K, C, H, W) or (K, H, W) of signed images (class templates).
FORMS: dict[str, str] = {
    "cards": "nnsee.notebook.units_view:unit_cards_html",
    "weights": "nnsee.notebook.weights_view:weights_html",
}


def _load(target: str) -> Renderer:
    module, function = target.split(":")
    return getattr(importlib.import_module(module), function)


def _key(cls: type) -> tuple[str, str]:
    return cls.__module__, cls.__qualname__


def renderer_for(obj: Any) -> Renderer | None:
    """The renderer of ``obj``'s type (or of its nearest registered base class), else by its form, else None."""
    for cls in type(obj).__mro__:
        target = RENDERERS.get(_key(cls))
        if target is not None:
            return _load(target)
    if isinstance(obj, list | tuple) and obj and all(
            _key(type(o)) == ("nnsee.methods.hidden_units", "UnitCard") for o in obj):
        return _load(FORMS["cards"])
    if type(obj).__module__ == "numpy" and type(obj).__name__ == "ndarray" and obj.ndim in (3, 4):
        return _load(FORMS["weights"])
    return None


def register_formatters(shell: Any | None = None) -> bool:
    """Register a ``text/html`` formatter for every type of :data:`RENDERERS` in IPython's ``shell`` (default: the
    running one); False when there is none (plain Python: ``show`` still works)."""
    if shell is None:
        try:
            from IPython import get_ipython
        except ImportError:
            return False
        shell = get_ipython()
    if shell is None:
        return False
    html = shell.display_formatter.formatters["text/html"]
    for (module, name), target in RENDERERS.items():
        html.for_type_by_name(module, name, _formatter(target))
    return True


def _formatter(target: str) -> Callable[[Any], str]:
    def format_html(obj: Any) -> str:
        return _load(target)(obj)

    return format_html
