"""What a tracker writes per call: O(model), not O(epochs) (run.json is not rewritten per epoch); and a process
killed at any moment of a call leaves a run that loads, with whole epochs only."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

import nnsee
from nnsee.train import load_run
from nnsee.train.run import list_snapshots
from tests.track.track_model import CLASSES, SHAPE, tiny_cnn


def _written() -> int:
    """Bytes this process has passed to write() so far (/proc/self/io wchar)."""
    with open("/proc/self/io") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("wchar:"))


def test_bytes_written_per_call_do_not_grow_with_the_epochs(tmp_path) -> None:
    """Calls 501-600 write as many bytes as calls 1-100 (within 10%): the history is appended, never rewritten.
    (Rewriting run.json with the whole history every call, calls 501-600 wrote 4.3x the bytes of calls 1-100.)"""
    tracker = nnsee.track(tiny_cnn(), out=tmp_path / "run", class_names=CLASSES, input_shape=SHAPE,
                          normalize="none", snapshots=[])
    run_json = tmp_path / "run" / "run.json"
    before = run_json.stat()
    blocks = []
    for first in (1, 101, 501):
        start = _written()
        for epoch in range(first, first + 100 if first != 101 else 501):
            tracker.epoch(epoch, train_loss=1.0 / epoch, val_loss=2.0 / epoch, train_acc=0.5, val_acc=0.25, lr=0.01)
        blocks.append(_written() - start)
    early, late = blocks[0], blocks[2]
    print(f"bytes written by calls 1-100: {early:,}, by calls 501-600: {late:,}")
    assert late < 1.1 * early, (early, late)
    after = run_json.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)  # not rewritten per call
    assert len(load_run(tmp_path / "run", model=tiny_cnn()).history["epoch"]) == 600


CHILD = """
import sys, torch
from torch import nn
import nnsee
torch.manual_seed(0)
model = nn.Sequential(nn.Flatten(), nn.Linear(1024, 2048), nn.ReLU(), nn.Linear(2048, 10))  # 8.5 MB of weights
tracker = nnsee.track(model, out=sys.argv[1], class_names=[str(k) for k in range(10)], input_shape=(1, 32, 32),
                      normalize="none", snapshots=range(0, 100000, 2))
epoch = 0
while True:
    epoch += 1
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.001)
    tracker.epoch(epoch, train_loss=1.0 / epoch, val_acc=0.5)
    print(epoch, flush=True)
"""


def _model() -> torch.nn.Module:
    from torch import nn

    return nn.Sequential(nn.Flatten(), nn.Linear(1024, 2048), nn.ReLU(), nn.Linear(2048, 10))


def test_a_kill_at_any_moment_leaves_a_run_that_loads(tmp_path) -> None:
    """SIGKILL at random moments over the calls (weights 8.5 MB, a snapshot every other epoch): the run loads, its
    history is epochs 1..m with nothing torn, its weights are those of epoch m or m + 1 (killed between the weights
    and the line), and every snapshot file present loads."""
    rng = random.Random(0)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path.cwd()), os.environ.get("PYTHONPATH", "")])}
    for trial in range(4):
        out = tmp_path / f"run{trial}"
        child = subprocess.Popen([sys.executable, "-c", CHILD, str(out)], stdout=subprocess.PIPE,
                                 stderr=subprocess.DEVNULL, text=True, env=env)
        assert child.stdout is not None
        printed = 0
        target = rng.randint(2, 6)
        while printed < target:
            line = child.stdout.readline()
            assert line, "the child ended early"
            printed = int(line)
        time.sleep(rng.uniform(0, 0.3))  # somewhere inside a later call
        child.send_signal(signal.SIGKILL)
        child.wait()
        run = load_run(out, model=_model())
        epochs = run.history["epoch"]
        m = len(epochs)
        assert epochs == list(range(1, m + 1)) and m >= printed, (trial, epochs, printed)
        assert run.history["train_loss"] == [1.0 / e for e in epochs]
        shift = float(run.model[1].bias[0].detach()) - _initial_bias()
        assert round(shift / 0.001) in (m, m + 1), (trial, shift, m)
        for epoch in list_snapshots(out):
            assert epoch % 2 == 0 and epoch <= m + 1
            run.snapshot_state(epoch)
        assert json.loads((out / "run.json").read_text())["status"] == "adopted"  # run.json of epoch 0, untouched


def _initial_bias() -> float:
    torch.manual_seed(0)
    return float(_model()[1].bias[0].detach())


def test_the_cost_of_a_call_on_the_resnet18_shape(tmp_path) -> None:
    """Measured, for the README: a call on the ResNet-18-shaped model (11.2M weights with 10 classes: 44.8 MB)
    writes one weights file and a line, two files at a snapshot epoch. Bounded loosely here (a loaded machine)."""
    from zoo import resnet18

    model = resnet18(n_classes=10).train()
    tracker = nnsee.track(model, out=tmp_path / "run", class_names=CLASSES, input_shape=(3, 64, 64),
                          normalize="imagenet", snapshots=[0, 2])
    times = []
    for epoch in (1, 2, 3):
        started = time.perf_counter()
        tracker.epoch(epoch, train_loss=1.0)
        times.append(time.perf_counter() - started)
    print(f"ResNet-18 shape, one call: {times[0]:.2f} s, {times[2]:.2f} s; with a snapshot: {times[1]:.2f} s")
    assert max(times) < 20
    assert (tmp_path / "run" / "model.safetensors").stat().st_size > 44_700_000
