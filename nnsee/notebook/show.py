"""``nnsee.show(x, **opts)``: the inline view of ``x`` as an object Jupyter displays (``_repr_html_``)."""

from __future__ import annotations

from typing import Any

from nnsee.errors import NnseeError
from nnsee.notebook.html import Shown
from nnsee.notebook.registry import RENDERERS, renderer_for


def show(x: Any, **opts: Any) -> Shown:
    """The inline view of ``x`` (a run, a FitResult, an ImageExplanation or the dot product's Linear/MLPExplanation,
    an Attribution, a UnitCard or a list of them, class templates as an array (K, C, H, W), an overfitting or
    standardization study), drawn by the renderer :mod:`nnsee.notebook.registry` names for its type; ``opts`` go
    to that renderer (e.g. ``class_names=``, ``image=``, ``images=``)."""
    render = renderer_for(x)
    if render is None:
        known = ", ".join(name for _, name in RENDERERS)
        raise NnseeError(f"nnsee.show cannot draw a {type(x).__name__}: it shows {known}, a list of UnitCard and an "
                         "array of weight images (K, C, H, W)")
    return Shown(render(x, **opts))
