"""nnsee in a notebook: every view displays itself inline, small, with the report's colour conventions.

``nnsee.show(x, **opts)`` returns an object whose ``_repr_html_`` draws ``x`` (a run, a fit result, an explanation of
one image, an attribution result, unit cards, class templates, a study); importing this package inside IPython also
registers ``text/html`` formatters for those types, so they display themselves as the last value of a cell. One
registry (:mod:`nnsee.notebook.registry`: type → renderer) serves both. ``Explorer`` (the widget, ``nnsee[notebook]``)
is imported when first used.
"""

from __future__ import annotations

from typing import Any

from nnsee.notebook.registry import register_formatters

__all__ = ["Explorer", "register_formatters", "show"]

register_formatters()  # inside IPython: the types of the registry display themselves; elsewhere nothing happens


def __getattr__(name: str) -> Any:
    """``Explorer`` (:mod:`nnsee.notebook.widget`, needs anywidget) and ``show``, imported when first used."""
    if name == "Explorer":
        from nnsee.notebook.widget import Explorer

        return Explorer
    if name == "show":
        from nnsee.notebook.show import show

        return show
    raise AttributeError(f"module 'nnsee.notebook' has no attribute {name!r}")
