"""Interleaved rounds, forward-throughput sweeps and map comparisons shared by the attribution benchmarks."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from benchmarks.common import CpuWatch, IdleGate, clean_rounds, median, rotated, timed

FORWARD_BATCHES = (1, 4, 8, 16, 32, 64, 128, 256)
#: float32's machine epsilon, 2^-23: the unit of the map-error bounds
EPS32 = float(np.finfo(np.float32).eps)


def interleaved(contenders: Sequence[tuple[str, Callable[[], Any]]], rounds: int, gate: IdleGate, log: Any,
                label: str) -> tuple[dict[str, float], dict[str, list[Any]], int]:
    """Rounds that each run every contender once (the order rotating), after the idle gate.

    Returns (median seconds per contender over the undisturbed rounds, every kept round's results, rounds kept).
    """
    times: dict[str, list[float]] = {name: [] for name, _ in contenders}
    results: dict[str, list[Any]] = {name: [] for name, _ in contenders}
    others = []
    for r in range(rounds):
        gate.wait()
        watch = CpuWatch()
        for name, fn in rotated(contenders, r):
            seconds, result = timed(fn)
            times[name].append(seconds)
            results[name].append(result)
        others.append(watch.others_cores())
        log(f"  {label} round {r + 1}/{rounds}: "
            + ", ".join(f"{name} {times[name][-1]:.3f}s" for name, _ in contenders))
    keep = clean_rounds(others) or list(range(rounds))
    medians = {name: median([v[i] for i in keep]) for name, v in times.items()}
    kept = {name: [v[i] for i in keep] for name, v in results.items()}
    return medians, kept, len(keep)


def as_array(a: Any) -> np.ndarray:
    """A tensor or array as a float64 numpy array."""
    return np.asarray(a.detach().cpu() if hasattr(a, "detach") else a, dtype=np.float64)


def rel_diff(ours: Any, ref: Any) -> float:
    """``max |ours − ref| / max |ref|``."""
    a, b = as_array(ours), as_array(ref)
    if a.shape != b.shape:
        raise AssertionError(f"shapes differ: {a.shape} vs {b.shape}")
    scale = float(np.abs(b).max())
    return float(np.abs(a - b).max()) / (scale if scale > 0 else 1.0)


def eps_error(ours: Any, ref: Any) -> float:
    """``max |ours − ref| / (ε₃₂ · max |ref|)``: the largest error in units of float32's epsilon times the largest
    reference value (a map's float32 rounding is a few tens of these units; a 0.1 % error is about 8,400)."""
    return rel_diff(ours, ref) / EPS32


def throughput(model: Any, shape: Sequence[int], batches: Sequence[int], min_images: int, min_seconds: float,
               warmed: set[int]) -> dict[int, float]:
    """Forward images per second (no grad) at each batch size: timed forwards until ``min_images`` images or
    ``min_seconds`` passed (at least one), after one untimed forward at a batch size not yet in ``warmed``."""
    import torch

    rates = {}
    with torch.no_grad():
        for b in batches:
            x = torch.randn(b, *shape)
            if b not in warmed:
                model(x)
                warmed.add(b)
            done, start = 0, time.perf_counter()
            while True:
                model(x)
                done += b
                elapsed = time.perf_counter() - start
                if done >= min_images or elapsed >= min_seconds:
                    break
            rates[b] = done / elapsed
    return rates


def best_rate(sweeps: list[dict[int, float]]) -> tuple[int, float, dict[int, float]]:
    """(best batch size, its median images/s, the median images/s per batch size) over the kept rounds."""
    per = {b: median([s[b] for s in sweeps]) for b in sweeps[0]}
    best = max(per, key=per.__getitem__)
    return best, per[best], per


def sweep_note(title: str, per: dict[int, float], best: int) -> str:
    return (f"forward throughput of {title} (images/s by batch size, median of rounds): "
            + ", ".join(f"{b}: {r:,.0f}" for b, r in per.items()) + f"; best {per[best]:,.0f} at {best}")


def fastest(times: dict[str, float], names: Sequence[str]) -> str:
    """The name among ``names`` with the smallest median seconds in ``times``."""
    return min(names, key=times.__getitem__)
