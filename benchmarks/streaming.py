"""The whole-data-set benchmarks (issue 14), each a section measured side by side in one interleaved run:

* ``stream-analyze``: ``analyze`` with the top-9 of two layers, streamed over Fashion-MNIST's 60,000 training images,
  against the bare forward passes over the same streamed batches (:mod:`benchmarks.stream_analyze`);
* ``stream-workers``: an epoch of the nnsee CNN read from a PNG folder by 2 worker processes: the share of the loop's
  time spent waiting for data (:mod:`benchmarks.stream_workers`);
* ``stream-torchrun``: ``torchrun`` with 2 single-thread processes against one single-thread process, images per second
  after start-up (:mod:`benchmarks.stream_torchrun`).
"""

from __future__ import annotations

import importlib
from typing import Any

from benchmarks.common import IdleGate, Section

#: the streaming benchmarks by name (``python -m benchmarks --only NAME``; ``--only streaming`` runs all)
BENCHES = {"stream-analyze": "benchmarks.stream_analyze", "stream-workers": "benchmarks.stream_workers",
           "stream-torchrun": "benchmarks.stream_torchrun"}


def run(quick: bool, seed: int, gate: IdleGate, log: Any, only: tuple[str, ...] = tuple(BENCHES)) -> list[Section]:
    """The streaming benchmarks named in ``only``, in the order of :data:`BENCHES`."""
    from benchmarks.attribution import measured

    return [measured(importlib.import_module(BENCHES[name]).bench, quick, seed, gate, log)
            for name in BENCHES if name in only]
