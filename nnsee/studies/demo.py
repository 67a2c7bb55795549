"""Moved to :mod:`nnsee.demo`: the demo trains, studies and reports, so it sits above the report, not among the
studies the report renders. This name resolves lazily, without importing the report, until the CLI imports
``nnsee.demo`` itself."""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    import nnsee.demo

    return getattr(nnsee.demo, name)
