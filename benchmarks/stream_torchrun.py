"""``torchrun`` spreads ``analyze`` over processes (issue 14): 2 single-thread processes give at least 1.7x the images
per second of one single-thread process, after start-up.

Each contender is the command line a user types, ``nnsee analyze RUN --data fashion-mnist --split S --layers
conv1,conv2 --k 9`` with ``OMP_NUM_THREADS=1``, run as ``python -m nnsee`` (one process) and as ``python -m
torch.distributed.run --standalone --nproc-per-node 2 -m nnsee`` (two ranks, each its block of the images, merged on
rank 0). Start-up (imports, the rendezvous, loading the run) is the same whatever the number of images, so it is
cancelled by timing each contender over two sizes, Fashion-MNIST's test split (10,000) and its whole training file
(60,000, ``--val-fraction 0``): images per second after start-up = (60,000 - 10,000) / (t_60k - t_10k).
``--quick``: the built-in digits' test (500) and training (4,000) splits.
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

from benchmarks.common import IdleGate, Section, Target, fmt_s, fmt_x
from benchmarks.rounds import interleaved
from benchmarks.stream_data import LAYERS, cnn_run

SPEED_BOUND = 1.7
TORCHRUN = (sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2")


def _command(launcher: tuple[str, ...], run: Path, data: str, split: str, out: Path) -> list[str]:
    extra = ["--val-fraction", "0"] if split == "train" else []
    return [*launcher, "-m", "nnsee", "analyze", str(run), "--data", data, "--split", split, *extra,
            "--layers", ",".join(LAYERS), "--k", "9", "--out", str(out)]


def bench(quick: bool, seed: int, gate: IdleGate, log: Any) -> Section:
    data, sizes = ("digits", {"test": 500, "train": 4000}) if quick else \
        ("fashion-mnist", {"test": 10_000, "train": 60_000})
    scratch = Path(tempfile.mkdtemp(prefix="nnsee-bench-torchrun-"))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    runs = iter(range(10**6))

    def command(launcher: tuple[str, ...], split: str) -> list[int | None]:
        out = scratch / f"analysis-{next(runs)}"
        done = subprocess.run(_command(launcher, run, data, split, out), env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"analyze failed ({done.returncode}): {done.stderr[-1500:]}")
        predictions = json.loads((out / "summary.json").read_text())["predictions"]
        shutil.rmtree(out)
        return predictions

    try:
        log(f"stream-torchrun: a run of the nnsee CNN on {data} ...")
        run = cnn_run(scratch, data, seed)
        contenders = [(f"{name} {split}", (lambda launcher=launcher, split=split: command(launcher, split)))
                      for name, launcher in (("1 process", (sys.executable,)), ("torchrun x2", TORCHRUN))
                      for split in sizes]
        medians, results, kept = interleaved(contenders, 1 if quick else 2, gate, log, "stream-torchrun")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    extra = sizes["train"] - sizes["test"]
    gaps = {name: medians[f"{name} train"] - medians[f"{name} test"] for name in ("1 process", "torchrun x2")}
    rate = {name: extra / gap if gap > 0 else float("nan") for name, gap in gaps.items()}  # nan: too disturbed
    speedup = rate["torchrun x2"] / rate["1 process"]
    rows = [[name, fmt_s(medians[f"{name} test"]), fmt_s(medians[f"{name} train"]),
             f"{rate[name]:,.0f}" if rate[name] == rate[name] else "-", fmt_x(rate[name] / rate["1 process"])]
            for name in rate]
    section = Section(
        f"analyze over {data} by one single-thread process and by torchrun with 2 (top-9 of {', '.join(LAYERS)}; "
        f"median of {kept} interleaved rounds)",
        ["launcher", f"{sizes['test']:,} images s", f"{sizes['train']:,} images s", "images/s after start-up",
         "speed-up"], rows,
        notes=[f"images/s after start-up = {extra:,} / (t_{sizes['train']} - t_{sizes['test']}); OMP_NUM_THREADS=1"],
    )
    section.targets.append(Target("torchrun x2 / one process, images per second after start-up", speedup, ">=",
                                  SPEED_BOUND, skip="--quick: speed not judged" if quick else ""))
    same = all(p == results[f"1 process {split}"][0] for split in sizes for p in results[f"torchrun x2 {split}"])
    section.targets.append(Target("torchrun's predictions equal one process's, image by image (1 = yes)", float(same),
                                  ">=", 1.0, fmt=".0f"))
    section.raw = {"seconds": medians, "rate": rate}
    return section
