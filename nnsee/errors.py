"""Errors nnsee raises: each one says what is wrong and what to do about it."""

from __future__ import annotations

from collections.abc import Iterable

#: How many items a warning or error lists before it says "and N more".
LISTED = 5


class NnseeError(Exception):
    """Base class of every error nnsee raises on purpose."""


class DataError(NnseeError, ValueError):
    """A data set, file or SPEC cannot be read or used (the message names the file or field)."""


class RunError(NnseeError):
    """A run folder or one of its files cannot be read, written or trusted (the message names the path)."""


class TrainingError(NnseeError):
    """Training settings are unusable, or training had to stop (e.g. the loss became non-finite)."""


class MethodError(NnseeError, ValueError):
    """A way of seeing does not apply to this model or these inputs (the message says what to use instead)."""


def not_one_of(what: str, value: object, choices: Iterable[object]) -> str:
    """The one message for a value outside its choices: ``"<what> must be one of a, b, c; got 'x'"`` (at most 30
    choices listed, then how many more)."""
    shown = repr(value) if len(repr(value)) <= 80 else repr(value)[:79] + "…"
    return f"{what} must be one of {first_few(choices, 30, quote=False)}; got {shown}"


def first_few(items: Iterable[object], limit: int = LISTED, *, quote: bool = True) -> str:
    """``"a, b, c and N more"``: the first ``limit`` items (strings as reprs when ``quote``; each cut to 80
    characters), then a count, so a message about 100,000 classes stays one short line."""
    shown: list[str] = []
    total = 0
    for total, item in enumerate(items, start=1):
        if total <= limit:
            text = repr(item) if quote and isinstance(item, str) else str(item)
            shown.append(text if len(text) <= 80 else text[:79] + "…")
    more = f" and {total - limit:,} more" if total > limit else ""
    return ", ".join(shown) + more
