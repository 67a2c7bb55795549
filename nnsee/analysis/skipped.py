"""Unreadable images: how many, and the first ``CAP`` by position (merge: counts add, lists keep the lowest
positions, so any grouping of parts gives the same list)."""

from __future__ import annotations

import numpy as np

#: How many skipped files the list keeps (the count is always whole).
CAP = 100


class Skipped:
    """``count`` and up to ``CAP`` ``(position, path, reason)``, lowest positions first."""

    def __init__(self) -> None:
        self.count = 0
        self.items: list[tuple[int, str, str]] = []

    def add(self, skipped: list[tuple[int, str, str]]) -> None:
        self.count += len(skipped)
        self.items = sorted([*self.items, *((int(p), str(a), str(r)) for p, a, r in skipped)])[:CAP]

    def merge(self, other: Skipped) -> Skipped:
        out = Skipped()
        out.count = self.count + other.count
        out.items = sorted([*self.items, *other.items])[:CAP]
        return out

    def state(self) -> dict[str, np.ndarray]:
        return {"count": np.array(self.count, np.int64),
                "position": np.array([p for p, _, _ in self.items], np.int64),
                "path": np.array([a for _, a, _ in self.items], dtype=str),
                "reason": np.array([r for _, _, r in self.items], dtype=str)}

    @classmethod
    def from_state(cls, state: dict[str, np.ndarray]) -> Skipped:
        out = cls()
        out.count = int(state["count"])
        out.items = [(int(p), str(a), str(r)) for p, a, r in zip(state["position"], state["path"], state["reason"],
                                                                  strict=True)]
        return out
