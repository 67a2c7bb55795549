"""Streamed training runs in memory bounded by a batch, not by the data set: training on an .npz of 10,000 and of
20,000 images (112 and 225 MiB as float32) streamed peaks at the same size; in memory it grows by the set."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
SHAPE = (3, 32, 32)

CHILD = """
import json, resource, sys
resource.setrlimit(resource.RLIMIT_AS, (int(sys.argv[3]), int(sys.argv[3])))
import torch
from nnsee.data import load_data
from nnsee.models import build_model
from nnsee.train import TrainConfig, fit
import torch.optim  # imported before the baseline: ~70 MB of modules, the same for any set
torch.set_num_threads(1)

def status(key):
    return int(next(line.split()[1] for line in open("/proc/self/status") if line.startswith(key + ":")))

# validation and test 15% each: over one 1,365-image evaluation chunk for both sizes
splits = load_data(sys.argv[1], stream=sys.argv[2] == "stream", val_fraction=0.15, test_fraction=0.15)
torch.manual_seed(0)
model = build_model("softmax", splits.shape, splits.train.n_classes)
result = fit(model, splits, TrainConfig(epochs=1, batch_size=256, standardize="image"), progress=False)
print(json.dumps({"streamed": splits.train.streamed, "peak_kb": status("VmHWM"),
                  "loss": result.history["train_loss"][0], "test": result.metrics["test"]["accuracy"]}))
"""


def _write(path: Path, n: int) -> float:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, n)
    images = np.clip(rng.normal(100, 30, (n, *SHAPE)) + 20 * labels[:, None, None, None], 0, 255).astype(np.uint8)
    np.savez(path, images=images, labels=labels, class_names=np.array(["a", "b", "c", "d"]))
    return n * int(np.prod(SHAPE)) * 4 / 2**20


def _train(path: Path, mode: str, limit: int = 3 << 30) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-c", CHILD, str(path), mode, str(limit)], capture_output=True, text=True,
                          timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.splitlines()[-1])


def test_streamed_training_memory_does_not_grow_with_the_set(tmp_path: Path) -> None:
    small_mib, big_mib = _write(tmp_path / "small.npz", 10_000), _write(tmp_path / "big.npz", 20_000)
    small, big = _train(tmp_path / "small.npz", "stream"), _train(tmp_path / "big.npz", "stream")
    memory = _train(tmp_path / "big.npz", "memory")
    peaks = {k: r["peak_kb"] / 1024 for k, r in (("small", small), ("big", big), ("memory", memory))}
    print(f"peak RSS training 1 epoch: streamed {small_mib:.0f} MiB set {peaks['small']:.0f} MiB, streamed "
          f"{big_mib:.0f} MiB set {peaks['big']:.0f} MiB, in memory {big_mib:.0f} MiB set {peaks['memory']:.0f} MiB")
    assert small["streamed"] and big["streamed"] and not memory["streamed"]
    assert abs(big["loss"] - memory["loss"]) < 1e-5 and big["test"] == memory["test"]
    assert peaks["big"] - peaks["small"] < 0.1 * peaks["small"]  # twice the images, the same peak
    assert peaks["memory"] - peaks["big"] > 0.6 * big_mib  # the in-memory run holds the set (the check can fail)
