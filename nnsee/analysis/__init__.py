"""``nnsee analyze``: one streaming pass of a whole data set through a model (predictions, confusion matrix,
top-k per channel, attribution maps in shards, class means), resumable, and shared over ``torchrun`` ranks.

``analyze``, ``load_analysis`` and ``Analysis`` are imported on first use (the CLI imports this package's command
without torch)."""

from __future__ import annotations

from typing import Any

__all__ = ["Analysis", "analyze", "load_analysis"]


def __getattr__(name: str) -> Any:
    if name == "analyze":
        from nnsee.analysis.engine import analyze

        return analyze
    if name in ("Analysis", "load_analysis"):
        from nnsee.analysis import result

        return getattr(result, name)
    raise AttributeError(name)
