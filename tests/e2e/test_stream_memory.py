"""Memory independent of the data set's size (issue 14's must-show): ``nnsee analyze`` with the top-9 of two layers
and one attribution method, streamed, in a child process that reports its own peak (VmHWM) and its resident size
before the command (after the imports). Two cases:

* Fashion-MNIST's 10,000 test images against its 60,000 training images: peak RSS within 10% of each other;
* a folder of 10,002 JPEG photos of 3x128x128 written by the test (0.5 GB as uint8, 1.97 GB as float32, so no
  in-memory copy fits) under ``--max-memory 256M``: the peak grows less than 400 MiB over the resident size before.
  The model there is a 16-unit MLP (the top-9 of its hidden layer, before and after tanh): what is measured is the
  data's path, and a CNN at 128 px would spend minutes of CI on convolutions.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from photos import photo_folder

FASHION = Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")
needs_fashion = pytest.mark.skipif(not FASHION.exists(), reason="apt-get install dataset-fashion-mnist")

CHILD = """
import json, resource, sys
limit = 6 << 30  # a safety net: an in-memory copy of the photo folder alone is 1.97 GB as float32
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
import torch, nnsee.analysis, nnsee.data.loader
from nnsee.cli import main

def status(key):
    return next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith(key)) / 1024

before = status("VmRSS:")
try:
    main(sys.argv[1:], standalone_mode=False)
finally:
    print(json.dumps({"before_mb": before, "peak_mb": status("VmHWM:")}))
"""


def _nnsee(*args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "nnsee", *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "OMP_NUM_THREADS": "2"})


def _measured(*args: str) -> dict[str, float]:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", CHILD, *args], capture_output=True, text=True, timeout=1200,
                          env={**os.environ, "OMP_NUM_THREADS": "2"})
    assert done.returncode == 0, done.stderr[-3000:]
    print(f"nnsee {args[0]}: {time.perf_counter() - started:.1f} s")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _analyze(run: Path, out: Path, *data: str) -> dict[str, float]:
    measured = _measured("analyze", str(run), *data, "--layers", "conv1,conv2", "--k", "9", "--methods", "saliency",
                         "--stream", "--out", str(out))
    summary = json.loads((out / "summary.json").read_text())
    measured["n"] = summary["n"]
    return measured


@needs_fashion
def test_analyze_peak_memory_does_not_grow_with_the_number_of_images(tmp_path: Path) -> None:
    run = tmp_path / "run"
    trained = _nnsee("train", "--data", "fashion-mnist", "--model", "cnn", "--channels", "8,16", "--epochs", "0",
                     "--out", str(run))
    assert trained.returncode == 0, trained.stderr[-2000:]
    small = _analyze(run, tmp_path / "a10k", "--data", "fashion-mnist", "--split", "test")
    large = _analyze(run, tmp_path / "a60k", "--data", "fashion-mnist", "--split", "train", "--val-fraction", "0")
    print(f"analyze peak RSS: {small['n']:,} images {small['peak_mb']:.0f} MB, {large['n']:,} images "
          f"{large['peak_mb']:.0f} MB")
    assert (small["n"], large["n"]) == (10_000, 60_000)
    assert abs(large["peak_mb"] - small["peak_mb"]) <= 0.10 * small["peak_mb"], (small, large)


def test_a_photo_folder_larger_than_memory_streams_under_max_memory(tmp_path: Path) -> None:
    folder = photo_folder(tmp_path / "photos", per_class=3334, side=128, fmt="jpg")  # 10,002 photos
    run = tmp_path / "run"
    trained = _nnsee("train", "--data", str(folder), "--size", "128", "--rgb", "--model", "mlp", "--hidden", "16",
                     "--epochs", "0", "--max-memory", "256M", "--out", str(run))
    assert trained.returncode == 0, trained.stderr[-2000:]
    out = tmp_path / "analysis"
    measured = _measured("analyze", str(run), "--data", str(folder), "--size", "128", "--rgb", "--split", "train",
                         "--val-fraction", "0", "--test-fraction", "0",
                         "--layers", "fc1,act1", "--k", "9", "--methods", "saliency", "--max-memory", "256M",
                         "--out", str(out))
    summary = json.loads((out / "summary.json").read_text())
    growth = measured["peak_mb"] - measured["before_mb"]
    print(f"photo folder: {summary['n']:,} images of 3x128x128, peak {measured['peak_mb']:.0f} MB, growth "
          f"{growth:.0f} MiB over {measured['before_mb']:.0f} MB")
    assert summary["n"] == 10_002
    assert growth < 400, measured
