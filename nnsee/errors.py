"""Errors nnsee raises: each one says what is wrong and what to do about it."""

from __future__ import annotations

from collections.abc import Iterable


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
    """The one message for a value outside its choices: ``"<what> must be one of a, b, c; got 'x'"``."""
    return f"{what} must be one of {', '.join(str(c) for c in choices)}; got {value!r}"
