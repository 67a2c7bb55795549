"""The deep-net benchmarks (issue 13), each a section measured side by side in one interleaved run on ResNet-18's
shape at 3×224×224 (:mod:`benchmarks.deep_models`):

* ``deep-occlusion``: region occlusion vs Captum's default and best ``perturbations_per_eval``
  (:mod:`benchmarks.deep_occlusion`);
* ``deep-ig``: integrated gradients vs a plain chunked autograd loop over the same points (:mod:`benchmarks.deep_ig`);
* ``deep-views``: top-9 over 1,000 photos vs the forward passes to that stage, and its extra memory
  (:mod:`benchmarks.deep_views`).
"""

from __future__ import annotations

import importlib
from typing import Any

from benchmarks.common import IdleGate, Section

#: the deep benchmarks by name (``python -m benchmarks --only NAME``; ``--only deep`` runs all)
BENCHES = {"deep-occlusion": "benchmarks.deep_occlusion", "deep-ig": "benchmarks.deep_ig",
           "deep-views": "benchmarks.deep_views"}


def run(quick: bool, seed: int, gate: IdleGate, log: Any, only: tuple[str, ...] = tuple(BENCHES)) -> list[Section]:
    """The deep benchmarks named in ``only``, in the order of :data:`BENCHES`."""
    log("deep nets: importing captum.attr ...")
    import captum.attr  # noqa: F401  (imported once, outside every timed region)

    from benchmarks.attribution import measured

    return [measured(importlib.import_module(BENCHES[name]).bench, quick, seed, gate, log)
            for name in BENCHES if name in only]
