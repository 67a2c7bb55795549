"""``torchrun`` spreads ``analyze`` over processes (issue 14): 2 single-thread processes give at least 1.7x the images
per second of one single-thread process, after start-up.

Each contender is the command line a user types, ``nnsee analyze RUN --data fashion-mnist --split train
--val-fraction 0 --layers conv1,conv2 --k 9`` (Fashion-MNIST's whole training file, 60,000 images) with
``OMP_NUM_THREADS=1``, run as ``python -m nnsee`` (one process) and as ``python -m torch.distributed.run --standalone
--nproc-per-node 2 -m nnsee`` (two ranks, each its block of the images, merged on rank 0). Images per second after
start-up = ``n / seconds`` of the analysis's own ``summary.json``: ``seconds`` runs on rank 0 from the end of the
set-up (imports, the rendezvous, loading the run and the data, the probe, the plan) to the merged result, so it
covers the slowest rank's pass and the merge. The commands' wall times are shown beside it. ``--quick``: the built-in
digits' training split (4,000 images).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import IdleGate, Section, Target, fmt_s, fmt_x
from benchmarks.rounds import interleaved
from benchmarks.stream_data import LAYERS, cnn_run

SPEED_BOUND = 1.7
LAUNCHERS = {"1 process": (sys.executable,),
             "torchrun x2": (sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2")}


def bench(quick: bool, seed: int, gate: IdleGate, log: Any) -> Section:
    data = "digits" if quick else "fashion-mnist"
    scratch = Path(tempfile.mkdtemp(prefix="nnsee-bench-torchrun-"))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    runs = iter(range(10**6))

    def command(launcher: tuple[str, ...]) -> dict[str, Any]:
        out = scratch / f"analysis-{next(runs)}"
        done = subprocess.run([*launcher, "-m", "nnsee", "analyze", str(run), "--data", data, "--split", "train",
                               "--val-fraction", "0", "--layers", ",".join(LAYERS), "--k", "9", "--out", str(out)],
                              env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"analyze failed ({done.returncode}): {done.stderr[-1500:]}")
        summary = json.loads((out / "summary.json").read_text())
        shutil.rmtree(out)
        return {"n": summary["n"], "seconds": summary["seconds"], "predictions": summary["predictions"]}

    try:
        log(f"stream-torchrun: a run of the nnsee CNN on {data} ...")
        run = cnn_run(scratch, data, seed)
        contenders = [(name, (lambda launcher=launcher: command(launcher))) for name, launcher in LAUNCHERS.items()]
        walls, results, kept = interleaved(contenders, 1 if quick else 3, gate, log, "stream-torchrun")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    n = results["1 process"][0]["n"]
    rate = {name: float(np.median([r["n"] / r["seconds"] for r in results[name]])) for name in LAUNCHERS}
    speedup = rate["torchrun x2"] / rate["1 process"]
    rows = [[name, fmt_s(walls[name]), fmt_s(n / rate[name]), f"{rate[name]:,.0f}",
             fmt_x(rate[name] / rate["1 process"])] for name in LAUNCHERS]
    section = Section(
        f"analyze over {n:,} {data} images by one single-thread process and by torchrun with 2 (top-9 of "
        f"{', '.join(LAYERS)}; median of {kept} interleaved rounds)",
        ["launcher", "command s", "after start-up s", "images/s after start-up", "speed-up"], rows,
        notes=["after start-up: summary.json's seconds (rank 0, from the end of the set-up to the merged result); "
               "OMP_NUM_THREADS=1"],
    )
    section.targets.append(Target("torchrun x2 / one process, images per second after start-up", speedup, ">=",
                                  SPEED_BOUND, skip="--quick: speed not judged" if quick else ""))
    one = results["1 process"][0]["predictions"]
    same = all(r["predictions"] == one for name in LAUNCHERS for r in results[name])
    section.targets.append(Target("torchrun's predictions equal one process's, image by image (1 = yes)", float(same),
                                  ">=", 1.0, fmt=".0f"))
    section.raw = {"wall": walls, "rate": rate, "seconds": {k: [r["seconds"] for r in v] for k, v in results.items()}}
    return section
