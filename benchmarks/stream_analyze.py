"""Streaming ``analyze`` at the forward floor (issue 14): the top-9 of two layers over Fashion-MNIST's 60,000
training images, streamed from the IDX files, within 1.15x of the bare forward passes over the same batches.

Both contenders read the same streamed batches (``nnsee.data.loader.batches``: the same positions, batch size and
per-image standardization, decoded in the main process) and run the nnsee CNN in eval mode without gradients. The
floor stops there; ``analyze`` also keeps every prediction and probability, the confusion matrix and the running
top-9 of ``conv1`` and ``conv2``, and writes its folder (summary, probabilities, checkpoints). Judged as well (in
``--quick`` too): the analysis's predictions equal the argmax of the floor's logits, image by image.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import IdleGate, Section, Target, fmt_s, fmt_x
from benchmarks.rounds import interleaved
from benchmarks.stream_data import LAYERS, cnn, fashion

TIME_BOUND = 1.15
BATCH = 256


def bench(quick: bool, seed: int, gate: IdleGate, log: Any) -> Section:
    import torch

    from nnsee.analysis import analyze
    from nnsee.data.loader import batches
    from nnsee.data.standardize import Standardizer

    data = fashion("train", quick)
    model, standardizer = cnn(seed), Standardizer("image")
    log(f"stream-analyze: {len(data):,} Fashion-MNIST training images, streamed={data.streamed}, batch {BATCH}")
    scratch = Path(tempfile.mkdtemp(prefix="nnsee-bench-analyze-"))
    rounds = 1 if quick else 3

    def floor() -> np.ndarray:
        predicted = []
        with torch.no_grad():
            for batch in batches(data, BATCH, transform=standardizer.transform):
                predicted.append(model(batch.images).argmax(1).numpy())
        return np.concatenate(predicted)

    runs = iter(range(10**6))

    def ours() -> list[Any]:
        out = scratch / f"analysis-{next(runs)}"
        analyze(model, data, out, standardizer=standardizer, layers=LAYERS, k=9, batch_size=BATCH, progress=False)
        summary = json.loads((out / "summary.json").read_text())
        shutil.rmtree(out)
        return summary["predictions"]

    try:
        ours()  # warm-up: oneDNN kernels, the hooks' first registration
        medians, results, kept = interleaved([("forward floor", floor), ("analyze", ours)], rounds, gate, log,
                                             "stream-analyze")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    ratio = medians["analyze"] / medians["forward floor"]
    same = all(np.array_equal(np.asarray(p), f) for p, f in zip(results["analyze"], results["forward floor"],
                                                                  strict=True))
    n = len(data)
    section = Section(
        f"Streaming analyze over {n:,} Fashion-MNIST training images (top-9 of {', '.join(LAYERS)}; nnsee CNN; "
        f"batch {BATCH}; median of {kept} interleaved rounds)",
        ["contender", "seconds", "images/s", "vs floor"],
        [["forward floor (stream + standardize + forward)", fmt_s(medians["forward floor"]),
          f"{n / medians['forward floor']:,.0f}", "1.00x"],
         ["analyze (+ predictions, confusion, top-9 x 2, writes)", fmt_s(medians["analyze"]),
          f"{n / medians['analyze']:,.0f}", fmt_x(ratio)]],
    )
    section.targets.append(Target("analyze / forward floor over the same streamed batches", ratio, "<=", TIME_BOUND,
                                  skip="--quick: speed not judged" if quick else ""))
    section.targets.append(Target("predictions equal the floor's argmax, image by image (1 = yes)", float(same), ">=",
                                  1.0, fmt=".0f"))
    section.raw = {"seconds": medians, "n": n, "ratio": ratio}
    return section
