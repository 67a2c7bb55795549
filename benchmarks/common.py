"""Shared pieces of the benchmarks: the data (through nnsee's loader), timing, targets and the printed table."""

from __future__ import annotations

import gc
import os
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

DATASET = "fashion-mnist"


@dataclass
class Data:
    """Standardized Fashion-MNIST as flat float32 arrays, plus nnsee's ImageSets for nnsee's own ``fit``.

    ``x_train``/``x_test`` are (N, 784) float32 from nnsee's ``Standardizer("image")``: every peer gets exactly
    the arrays nnsee trains on. ``train``/``test`` are the un-standardized ``ImageSet`` (pixels / 255).
    """

    train: Any
    test: Any
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    note: str = ""

    @property
    def n_features(self) -> int:
        return int(self.x_train.shape[1])


def load_fashion_mnist(n_train: int | None = None, n_test: int | None = None, seed: int = 0) -> Data:
    """The official 60k/10k Fashion-MNIST split through nnsee's loader, standardized per image.

    ``n_train``/``n_test`` take a seeded random subset (for ``--quick``).
    """
    from nnsee.data.named import load_named
    from nnsee.data.standardize import Standardizer

    train, test = load_named(DATASET, download=False)
    note = f"{DATASET}: official {len(train):,} train / {len(test):,} test"
    rng = np.random.default_rng(seed)
    if n_train is not None and n_train < len(train):
        train = train.subset(np.sort(rng.choice(len(train), n_train, replace=False)))
    if n_test is not None and n_test < len(test):
        test = test.subset(np.sort(rng.choice(len(test), n_test, replace=False)))
    if len(train) != 60_000 or len(test) != 10_000:
        note += f", subset {len(train):,} train / {len(test):,} test"
    standardizer = Standardizer("image").fit(train.images)
    x_train = standardizer.transform(train.images).reshape(len(train), -1)
    x_test = standardizer.transform(test.images).reshape(len(test), -1)
    check = image_standardize(train.images[:256])
    if not np.allclose(check, x_train[: len(check)], atol=1e-5):
        raise AssertionError("nnsee's image standardization differs from the formula the benchmark documents")
    return Data(train, test, x_train, train.labels, x_test, test.labels, note)


def image_standardize(x: np.ndarray) -> np.ndarray:
    """``x' = (x - mean(x)) / (||x - mean(x)|| / sqrt(D))`` per row of (N, D): nnsee's ``image`` mode, for checking."""
    x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    centred = x - x.mean(axis=1, keepdims=True)
    scale = np.sqrt((centred * centred).mean(axis=1, keepdims=True))
    return np.where(scale > 0, centred / np.where(scale > 0, scale, 1.0), 0.0).astype(np.float32)


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """(seconds, result) of ``fn()``, after a garbage collection outside the timed region."""
    gc.collect()
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def _busy_cpu_seconds() -> float | None:
    """CPU seconds all processes have spent busy since boot (Linux ``/proc/stat``), or None elsewhere."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()[1:]
        user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
        return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, AttributeError):
        return None


class CpuWatch:
    """How much CPU *other* processes used while this one benchmarked: all busy CPU time minus this process's."""

    def __init__(self) -> None:
        self.wall, self.busy, self.own = time.perf_counter(), _busy_cpu_seconds(), _own_cpu_seconds()

    def elapsed(self) -> float:
        """Wall seconds since the watch started."""
        return time.perf_counter() - self.wall

    def others_cores(self) -> float | None:
        """Cores' worth of CPU the other processes used on average since the watch started."""
        busy = _busy_cpu_seconds()
        if busy is None or self.busy is None:
            return None
        wall = time.perf_counter() - self.wall
        return max(0.0, (busy - self.busy) - (_own_cpu_seconds() - self.own)) / max(wall, 1e-9)


def _own_cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system


#: a round during which other processes used more than this many cores on average counts as disturbed
DISTURBED_CORES = 0.15


class IdleGate:
    """Before each round, wait until other processes leave the CPU idle, spending at most ``budget`` seconds in all.

    ``wait`` returns the other processes' load (cores) over the last 0.5-second window (None where unmeasurable).
    """

    def __init__(self, budget: float, log: Callable[[str], None] | None = None) -> None:
        self.budget, self.log = budget, log

    def wait(self) -> float | None:
        started = time.perf_counter()
        told = False
        while True:
            watch = CpuWatch()
            time.sleep(0.5)
            others = watch.others_cores()
            spent = time.perf_counter() - started
            if others is None or others < DISTURBED_CORES or spent >= self.budget:
                self.budget = max(0.0, self.budget - spent)
                return others
            if self.log is not None and not told:
                self.log(f"  waiting for the machine to go idle (others use {others:.2f} cores; "
                         f"{self.budget:.0f}s of waiting left)")
                told = True


def clean_rounds(others: Sequence[float | None]) -> list[int]:
    """Indices of the rounds that other processes did not disturb (all of them where it cannot be measured)."""
    return [i for i, o in enumerate(others) if o is None or o < DISTURBED_CORES]


def busy_warning(others_cores: float | None) -> str:
    """A warning when other processes competed for the CPU ("" when the machine looked otherwise idle)."""
    if others_cores is None or others_cores < DISTURBED_CORES:
        return ""
    return (f"WARNING: other processes used {others_cores:.2f} of the {os.cpu_count()} cores on average during this "
            "benchmark: timings are disturbed (multithreaded kernels suffer most); rerun on an idle machine")


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def rotated(items: Sequence[Any], k: int) -> list[Any]:
    """``items`` rotated left by ``k``: round ``k`` of an interleaved run starts with a different contender."""
    k %= max(len(items), 1)
    return list(items[k:]) + list(items[:k])


@dataclass
class Target:
    """A printed PASS/FAIL line: ``value`` compared with ``bound`` (``>=`` or ``<=``)."""

    name: str
    value: float | None
    op: str
    bound: float
    fmt: str = ".2f"
    note: str = ""
    skip: str = ""  # reason the target is not judged (e.g. --quick); without one, an unmeasured value fails

    @property
    def passed(self) -> bool | None:
        """None when not judged (``skip`` says why); a value that could not be measured (None, NaN) fails."""
        if self.skip:
            return None
        if self.value is None or not np.isfinite(self.value):
            return False
        return self.value >= self.bound if self.op == ">=" else self.value <= self.bound

    @property
    def verdict(self) -> str:
        return {True: "PASS", False: "FAIL", None: "n/a"}[self.passed]

    def line(self) -> str:
        value = "-" if self.value is None else format(self.value, self.fmt)
        extra = f"  ({self.skip})" if self.skip else (f"  ({self.note})" if self.note else "")
        return f"  [{self.verdict:4}] {self.name}: {value} {self.op} {format(self.bound, self.fmt)}{extra}"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "value": self.value, "op": self.op, "bound": self.bound, "verdict": self.verdict,
                "skip": self.skip or None}


def exit_status(targets: Sequence[Target]) -> int:
    """The process's exit status: 1 when any judged target failed, else 0 (unjudged targets never fail a run)."""
    return int(any(t.passed is False for t in targets))


@dataclass
class Section:
    """One benchmark's printed result: a table (header + rows), notes, and targets."""

    title: str
    header: list[str]
    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)
    others_cores: float | None = None  # CPU other processes used meanwhile (cores, on average)
    seconds: float | None = None  # wall time the benchmark took

    def render(self) -> str:
        widths = [max(len(str(r[i])) for r in [self.header, *self.rows]) for i in range(len(self.header))]

        def fmt(row: list[str]) -> str:
            pairs = enumerate(zip(row, widths, strict=True))
            cells = [str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in pairs]
            return "  " + "  ".join(cells)

        lines = [self.title, fmt(self.header), "  " + "  ".join("-" * w for w in widths)]
        lines += [fmt(r) for r in self.rows]
        lines += [f"  * {n}" for n in self.notes]
        lines += [t.line() for t in self.targets]
        if self.seconds is not None:
            lines.append(f"  ({self.seconds:.0f}s)")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"title": self.title, "header": self.header, "rows": self.rows, "notes": self.notes,
                "targets": [t.to_dict() for t in self.targets], "others_cores": self.others_cores,
                "seconds": self.seconds, "raw": self.raw}


def fmt_s(seconds: float) -> str:
    return f"{seconds:.3f}" if np.isfinite(seconds) else "-"


def fmt_x(ratio: float | None) -> str:
    return f"{ratio:.2f}x" if ratio is not None and np.isfinite(ratio) else "-"


def fmt_acc(acc: float | None) -> str:
    return f"{acc:.4f}" if acc is not None and np.isfinite(acc) else "-"
