"""nnsee: train an image classifier, then see what it learned."""

from typing import Any

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    """``nnsee.adopt(model, ...)`` (:func:`nnsee.adopt.adopt`), imported when first used: ``import nnsee`` stays
    cheap (no torch)."""
    if name == "adopt":
        import importlib

        return importlib.import_module("nnsee.adopt")
    raise AttributeError(f"module 'nnsee' has no attribute {name!r}")
