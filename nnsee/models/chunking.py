"""Chunk sizes that follow the machine: an online tuner that times the real work, wasting none of it.

A pass over ``total`` items (images, path points, occluded copies) is cut into spans ``[start, stop)``::

    key = chunk_key(model, "backward", x.shape[1:], x.dtype, x.device)
    for start, stop in chunks(total, key, cap=cap_for(x.shape[1:], BACKWARD_ELEMENTS), batch_size=batch_size):
        work(start, stop)          # the caller's real work on items start..stop-1

Rules:

* ``batch_size`` given (the user's): fixed spans of that size, nothing timed — it always wins.
* Otherwise each span is timed from the moment the generator hands it out to the moment the caller asks for the
  next one (``time.perf_counter``; on CUDA/MPS the device is synchronized first, so queued kernels count). Sizes are
  tried geometrically, 1, 2, 4, … up to ``cap``; a size's figure is the least seconds per item seen at it (a
  warm-up outlier — oneDNN's first pass at a new batch shape, another process's burst — only makes a size look
  slower). While a new size beats the best so far the search doubles; a size that looks more than :data:`WORSE`
  slower than the best ends the search, once the best's two neighbours were timed :data:`NEIGHBOUR_SAMPLES` times (a
  first span may have been a warm-up; if that changes the leader, the search goes on from there). The rest runs at
  the best size, spans filled evenly (``ceil(rest / ceil(rest / best))``, never above it).
* The state is kept per key — the model (by identity, dropped when the model is garbage-collected), the kind of pass
  ("forward", "backward", "region", …), the per-item shape, dtype, device and torch's thread count — so the next
  call starts at the chosen size directly and a search spread over several small calls resumes where it stopped.
  A settled key spends its 8th, 16th, 32nd span and then every :data:`RECHECK`-th at a neighbouring size (double, then
  half, in turn), real work too; a neighbour that beats the best by more than :data:`WORSE` becomes the best, and the
  search resumes above it where it is the largest size timed (so an early choice spoilt by another process's burst is
  corrected within a few calls).
* Memory is bounded by ``cap`` alone, which callers derive from element counts (:func:`cap_for`), never from a
  measurement. Results never depend on the sizes beyond float rounding: callers treat spans as any partition.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from math import prod
from typing import Any

import torch

from nnsee.errors import MethodError

#: a size is "slower" when its seconds per item exceed the best's by more than this share
WORSE = 0.05
#: a settled key spends one span in this many at a neighbouring size, to follow a machine whose answer changed
RECHECK = 64
#: ... and, after the search, these spans too (an early choice spoilt by a burst is corrected soon)
EARLY_RECHECKS = (8, 16, 32)
#: times the best's neighbours are timed before the search ends (a burst of another process may last two spans)
NEIGHBOUR_SAMPLES = 3
#: input elements per chunk: 4 Mi (16 MiB of float32) for forward-only passes, 2 Mi where autograd keeps activations
FORWARD_ELEMENTS = 1 << 22
BACKWARD_ELEMENTS = 1 << 21
#: keys remembered at most (least recently used dropped first)
MAX_KEYS = 512

Key = tuple[Any, ...]


def cap_for(item_shape: Sequence[int], max_elements: int, ceiling: int = 4096) -> int:
    """Items per chunk that memory allows: ``max_elements // prod(item_shape)``, within 1..``ceiling``."""
    return int(max(1, min(ceiling, max_elements // max(1, prod(int(d) for d in item_shape)))))


def chunk_key(model: Any, kind: str, item_shape: Sequence[int], dtype: torch.dtype | None = None,
              device: torch.device | str | None = None) -> Key:
    """The tuner's key: ``(id(model), type name, kind, item shape, dtype, device, threads)``; ``model`` None for
    work that no model identifies. The model's entries are forgotten when it is garbage-collected."""
    ident = None if model is None else id(model)
    if model is not None:
        TUNER.watch(model)
    return (ident, type(model).__qualname__, kind, tuple(int(d) for d in item_shape), str(dtype), str(device),
            torch.get_num_threads())


@dataclass
class _State:
    """What one key has measured: least seconds per item by size, observation counts, the chosen size."""

    per_item: dict[int, float] = field(default_factory=dict)
    seen: dict[int, int] = field(default_factory=dict)
    best: int | None = None  # set once the search ended
    spans: int = 0  # spans run since the search ended (for the recheck)
    rechecks: int = 0  # neighbour spans run since the search ended (the next goes up when even, else down)

    def record(self, size: int, seconds: float, items: int) -> None:
        rate = seconds / max(1, items)
        self.per_item[size] = min(rate, self.per_item.get(size, rate))
        self.seen[size] = self.seen.get(size, 0) + 1

    def leader(self) -> int:
        return min(self.per_item, key=self.per_item.__getitem__)

    def slower(self, size: int) -> bool:
        return self.per_item[size] > self.per_item[self.leader()] * (1 + WORSE)


def candidates(cap: int) -> list[int]:
    """The sizes tried: powers of two below ``cap``, then ``cap``."""
    sizes, s = [], 1
    while s < cap:
        sizes.append(s)
        s *= 2
    return [*sizes, cap]


class Tuner:
    """The per-key states and the span generator; ``clock`` (seconds) can be replaced, e.g. by a test's."""

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self.clock = clock
        self._states: OrderedDict[Key, _State] = OrderedDict()
        self._lock = threading.Lock()
        self._watched: set[int] = set()

    # -- bookkeeping
    def watch(self, model: Any) -> None:
        """Forget ``model``'s keys when it is collected (so a new object at the same address starts afresh)."""
        ident = id(model)
        with self._lock:
            if ident in self._watched:
                return
            try:
                weakref.finalize(model, self.forget, ident)
            except TypeError:  # not weak-referenceable: its keys stay until pushed out by MAX_KEYS
                return
            self._watched.add(ident)

    def forget(self, ident: int | None = None) -> None:
        """Drop the keys of the model with ``id`` ``ident`` (all keys when None)."""
        with self._lock:
            if ident is None:
                self._states.clear()
                self._watched.clear()
                return
            self._watched.discard(ident)
            for key in [k for k in self._states if k[0] == ident]:
                del self._states[key]

    def _state(self, key: Key) -> _State:
        with self._lock:
            state = self._states.pop(key, None) or _State()
            self._states[key] = state  # most recently used last
            while len(self._states) > MAX_KEYS:
                self._states.popitem(last=False)
            return state

    def chosen(self, key: Key) -> int | None:
        """The size the search settled on for ``key`` (None while it is still searching, or never ran)."""
        state = self._states.get(key)
        return None if state is None else state.best

    def measured(self, key: Key) -> dict[int, float]:
        """Least seconds per item seen at each size for ``key`` (a copy)."""
        state = self._states.get(key)
        return {} if state is None else dict(sorted(state.per_item.items()))

    # -- the search
    def _next(self, state: _State, cap: int, total: int, rest: int) -> int:
        """The size of the next span (before clipping to the ``rest`` left) in a call of ``total`` items: the search
        tries sizes up to ``min(cap, total)`` (a larger one could not be timed in such calls); a settled size is
        clipped to this call's ``cap`` (another caller's memory bound) without being forgotten; a recheck whose
        neighbour does not fit in ``rest`` waits for a span where it does."""
        if state.best is not None:
            best = min(state.best, cap)
            state.spans += 1
            if state.spans % RECHECK and state.spans not in EARLY_RECHECKS:
                return best
            sizes = candidates(max(1, min(cap, total)))
            i = max(k for k, size in enumerate(sizes) if size <= best)
            up = state.rechecks % 2 == 0
            near = sizes[min(i + 1, len(sizes) - 1) if up else max(i - 1, 0)]
            if near > rest:
                state.spans -= 1  # not now: the next span is a recheck again
                return best
            state.rechecks += 1
            return near
        sizes = candidates(max(1, min(cap, total)))
        done = 0  # sizes are tried in order: the measured ones are a prefix of `sizes`
        while done < len(sizes) and sizes[done] in state.per_item:
            done += 1
        if done == 0:
            return sizes[0]
        if state.slower(sizes[done - 1]) or done == len(sizes):
            return self._settle(state, sizes)
        return sizes[done]

    @staticmethod
    def _settle(state: _State, sizes: list[int]) -> int:
        """The fastest size measured, once both its neighbours were timed NEIGHBOUR_SAMPLES times (a neighbour's
        few spans may have been a warm-up or a burst that hid it being the fastest); until then, that neighbour."""
        tried = [s for s in sizes if s in state.per_item]
        leader = min(tried, key=state.per_item.__getitem__)
        i = tried.index(leader)
        for near in tried[max(0, i - 1) : i + 2]:
            if near != leader and state.seen[near] < NEIGHBOUR_SAMPLES:
                return near
        state.best, state.spans, state.rechecks = leader, 0, 0
        return leader

    def _update(self, state: _State, size: int) -> None:
        """After a recheck span: a neighbour clearly faster than the best takes over; where it is the largest size
        ever timed, the search resumes above it (the search may have ended early, spoilt by a burst)."""
        best = state.best
        if best is not None and size != best and state.per_item[size] * (1 + WORSE) < state.per_item[best]:
            state.best = None if size > best and size == max(state.per_item) else size

    def chunks(self, total: int, key: Key, cap: int, batch_size: int | None = None,
               device: torch.device | str | None = None) -> Iterator[tuple[int, int]]:
        """Spans ``(start, stop)`` covering ``range(total)`` in order (see the module docstring)."""
        if batch_size is not None:
            if int(batch_size) < 1:
                raise MethodError(f"batch_size must be at least 1, got {batch_size}")
            for start in range(0, total, int(batch_size)):
                yield start, min(total, start + int(batch_size))
            return
        cap = max(1, int(cap))
        state = self._state(key)
        sync = _synchronizer(device)
        start = 0
        while start < total:
            size = self._next(state, cap, total, total - start)
            settled = state.best is not None and size == min(state.best, cap)
            rest = total - start
            span = min(size, rest)
            if settled and rest > size:
                span = -(-rest // -(-rest // size))  # evenly filled: 50 at 16 -> 13, 13, 12, 12
            sync()
            began = self.clock()
            yield start, start + span
            sync()
            seconds = self.clock() - began
            if span == size or settled:  # a short tail at another size says nothing about it
                state.record(size, seconds, span)
                self._update(state, size)
            start += span


def _synchronizer(device: torch.device | str | None) -> Callable[[], None]:
    """Waits for ``device``'s queued work (CUDA, MPS); a no-op on the CPU."""
    kind = torch.device(device).type if device is not None else "cpu"
    if kind == "cuda":
        return lambda: torch.cuda.synchronize(device)
    if kind == "mps":
        return torch.mps.synchronize
    return lambda: None


#: the process's tuner, which nnsee's methods share
TUNER = Tuner()


def chunks(total: int, key: Key, cap: int, batch_size: int | None = None,
           device: torch.device | str | None = None) -> Iterator[tuple[int, int]]:
    """:meth:`Tuner.chunks` of the process's shared tuner."""
    return TUNER.chunks(total, key, cap, batch_size, device)
