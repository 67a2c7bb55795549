"""Errors nnsee raises: each one says what is wrong and what to do about it."""

from __future__ import annotations


class NnseeError(Exception):
    """Base class of every error nnsee raises on purpose."""


class DataError(NnseeError, ValueError):
    """A data set, file or SPEC cannot be read or used (the message names the file or field)."""


class RunError(NnseeError):
    """A run folder or one of its files cannot be read, written or trusted (the message names the path)."""


class TrainingError(NnseeError):
    """Training settings are unusable, or training had to stop (e.g. the loss became non-finite)."""
