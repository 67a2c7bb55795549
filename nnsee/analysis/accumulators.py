"""Everything one pass accumulates, as one associative bundle: predictions, confusion matrix, top-k per layer,
mean map per class per method, skipped files. ``state()`` is a flat dict of arrays (keys ``part/name``), saved
as one npz (no pickle); ``merge`` refuses parts of another run, data set or options (their fingerprints differ)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np

from nnsee.analysis.class_means import ClassMeans
from nnsee.analysis.predictions import Confusion, Predictions
from nnsee.analysis.skipped import Skipped
from nnsee.analysis.topk import TopK
from nnsee.errors import RunError


def differences(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[str]:
    """The dotted keys whose values differ between two fingerprints (``data.labels``, ``options.k 9 -> 5``). A value
    that is None on either side is unknown there and not compared (the file list of a set read into memory)."""
    out = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if a is None or b is None:
            continue
        if isinstance(a, dict) and isinstance(b, dict):
            out += differences(a, b, f"{prefix}{key}.")
        elif a != b:
            short = all(isinstance(v, (int, float, str, type(None))) and len(str(v)) <= 40 for v in (a, b))
            out.append(f"{prefix}{key} {a!r} -> {b!r}" if short else f"{prefix}{key}")
    return out


class Accumulators:
    """The accumulators of one analysis; ``fingerprint`` ({run, data, options}) ties a state to what made it."""

    def __init__(self, n: int, n_classes: int, layers: Sequence[str], k: int, methods: Sequence[str],
                 fingerprint: dict[str, Any]) -> None:
        self.fingerprint = fingerprint
        self.predictions = Predictions(n)
        self.confusion = Confusion(n_classes)
        self.topk = {layer: TopK(k) for layer in layers}
        self.means = {method: ClassMeans(n_classes) for method in methods}
        self.skipped = Skipped()

    def parts(self) -> dict[str, Any]:
        return {"predictions": self.predictions, "confusion": self.confusion, "skipped": self.skipped,
                **{f"topk:{name}": acc for name, acc in self.topk.items()},
                **{f"means:{name}": acc for name, acc in self.means.items()}}

    def merge(self, other: Accumulators) -> Accumulators:
        """The accumulators of both parts' images; refused when the fingerprints differ."""
        changed = differences(self.fingerprint, other.fingerprint)
        if changed:
            raise RunError(f"cannot merge analysis parts of different runs, data or options ({'; '.join(changed[:3])})")
        out = Accumulators.__new__(Accumulators)
        out.fingerprint = self.fingerprint
        out.predictions = self.predictions.merge(other.predictions)
        out.confusion = self.confusion.merge(other.confusion)
        out.topk = {name: acc.merge(other.topk[name]) for name, acc in self.topk.items()}
        out.means = {name: acc.merge(other.means[name]) for name, acc in self.means.items()}
        out.skipped = self.skipped.merge(other.skipped)
        return out

    def state(self) -> dict[str, np.ndarray]:
        flat = {"fingerprint": np.array(json.dumps(self.fingerprint, sort_keys=True))}
        for part, acc in self.parts().items():
            flat.update({f"{part}/{key}": value for key, value in acc.state().items()})
        return flat

    @classmethod
    def from_state(cls, flat: dict[str, np.ndarray]) -> Accumulators:
        out = cls.__new__(cls)
        out.fingerprint = json.loads(str(flat["fingerprint"]))
        grouped: dict[str, dict[str, np.ndarray]] = {}
        for key, value in flat.items():
            part, _, name = key.partition("/")
            if name:
                grouped.setdefault(part, {})[name] = value
        try:
            out.predictions = Predictions.from_state(grouped.pop("predictions"))
            out.confusion = Confusion.from_state(grouped.pop("confusion"))
            out.skipped = Skipped.from_state(grouped.pop("skipped"))
            out.topk = {p[5:]: TopK.from_state(s) for p, s in grouped.items() if p.startswith("topk:")}
            out.means = {p[6:]: ClassMeans.from_state(s) for p, s in grouped.items() if p.startswith("means:")}
        except KeyError as exc:
            raise RunError(f"an analysis state lacks {exc}; it is not a complete nnsee analysis state") from exc
        return out
