"""Checks of model options as they come from the CLI or from a run.json: exact types and ranges, one line each.

A value read from JSON may be anything: ``True`` is not a size, ``3.5`` is not rounded, ``"300"`` is not parsed.
"""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral
from typing import Any

from nnsee.errors import TrainingError


def is_int(value: Any) -> bool:
    """An integer (Python's or numpy's; ``bool`` is not one)."""
    return isinstance(value, Integral) and not isinstance(value, bool)


def int_option(name: str, value: Any, low: int, high: int, hint: str = "") -> int:
    """``value`` if it is an integer in ``[low, high]``; else a :class:`TrainingError` naming ``name``."""
    if not is_int(value) or not low <= value <= high:
        shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:40] + "..."
        raise TrainingError(f"{name} must be an integer from {low:,} to {high:,}, got {shown}" + (f"; {hint}" if hint
                                                                                                     else ""))
    return int(value)


def int_list_option(name: str, value: Any, low: int, high: int, max_items: int, hint: str = "") -> list[int]:
    """``value`` (one integer or a list of 1 to ``max_items`` integers) as a list, each in ``[low, high]``."""
    items = [value] if is_int(value) else value
    if not isinstance(items, Sequence) or isinstance(items, str) or not 1 <= len(items) <= max_items:
        shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:40] + "..."
        raise TrainingError(f"{name} must be an integer or a list of 1 to {max_items} integers, got {shown}"
                            + (f"; {hint}" if hint else ""))
    return [int_option(name, v, low, high, hint) for v in items]
