"""nnsee: train an image classifier, then see what it learned."""

from typing import Any

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    """``nnsee.adopt(model, ...)`` (:func:`nnsee.adoption.adopt`) and ``nnsee.track(model, ...)``
    (:func:`nnsee.train.track.track`) and ``nnsee.show(x)`` (:func:`nnsee.notebook.show.show`: ``x`` inline in
    a notebook), imported when first used: ``import nnsee`` stays cheap (no torch)."""
    if name == "adopt":
        from nnsee.adoption import adopt

        return adopt
    if name == "track":
        from nnsee.train.track import track

        return track
    if name == "show":
        from nnsee.notebook.show import show

        return show
    raise AttributeError(f"module 'nnsee' has no attribute {name!r}")
