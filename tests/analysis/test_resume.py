"""A killed ``python -m nnsee analyze`` resumes to the result of an uninterrupted pass; a resume against a changed
run, data set or options is refused, saying what changed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from tiny import banded_npz

from nnsee.analysis import load_analysis

ARGS = ["--split", "train", "--layers", "relu1,conv2", "--k", "4", "--methods", "saliency,occlusion",
        "--batch-size", "8", "--shard-size", "24", "--device", "cpu", "--no-progress"]


def _analyze(run: Path, out: Path, *extra: str, wait: bool = True) -> subprocess.Popen | subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "nnsee", "analyze", str(run), "--out", str(out), *ARGS, *extra]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if wait:
        return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _checkpoint_shard(out: Path) -> int:
    with np.load(out / "ranks" / "rank-0" / "checkpoint.npz") as z:
        return json.loads(str(z["progress"]))["next_shard"]


def _kill_after_first_checkpoint(run: Path, out: Path, sig: int) -> tuple[int, str]:
    child = _analyze(run, out, wait=False)
    checkpoint = out / "ranks" / "rank-0" / "checkpoint.npz"
    deadline = time.monotonic() + 120
    while not checkpoint.exists() and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    child.send_signal(sig)
    _, err = child.communicate(timeout=60)
    assert not (out / "summary.json").exists(), "the pass ended before the kill: make the set bigger"
    return child.returncode, err


def _compare(a: Path, b: Path) -> None:
    sa, sb = load_analysis(a), load_analysis(b)
    for s in (sa.summary, sb.summary):
        s.pop("seconds")
    assert sa.summary == sb.summary
    np.testing.assert_array_equal(sa.probabilities(), sb.probabilities())
    for method in ("saliency", "occlusion"):  # occlusion's chunk sizes follow a timing tuner: float32 rounding
        tol = 0 if method == "saliency" else 1e-6
        for (pa, ma), (pb, mb) in zip(sa.maps(method), sb.maps(method), strict=True):
            np.testing.assert_array_equal(pa, pb)
            np.testing.assert_allclose(ma, mb, rtol=0, atol=tol * np.abs(mb).max())
        np.testing.assert_allclose(sa.class_means(method), sb.class_means(method), rtol=0,
                                   atol=tol * np.abs(sb.class_means(method)).max())


@pytest.fixture(scope="module")
def whole(cnn_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("whole") / "a"
    done = _analyze(cnn_run, out, "--json")
    assert done.returncode == 0, done.stderr
    said = json.loads(done.stdout)
    assert said["n"] == 480 and said["n_skipped"] == 0 and said["layers"] == ["relu1", "conv2"]
    assert said["methods"] == ["saliency", "occlusion"] and said["world_size"] == 1
    return out


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_a_killed_analysis_resumes_to_the_uninterrupted_result(cnn_run: Path, whole: Path, tmp_path: Path,
                                                               sig: int) -> None:
    killed = tmp_path / "killed"
    code, err = _kill_after_first_checkpoint(cnn_run, killed, sig)
    if sig == signal.SIGTERM:
        assert code == 130 and err.strip().count("\n") == 0 and "--resume" in err, err
    else:
        assert code == -signal.SIGKILL
    stopped_at = _checkpoint_shard(killed)
    assert 1 <= stopped_at < 20  # 480 images, 24 a shard: stopped part-way
    left = [killed / "maps" / "saliency" / ".tmp-r000-000019.npy-0a1b2c3d4e5f",
            killed / "ranks" / "rank-0" / ".tmp-checkpoint.npz-0a1b2c3d4e5f"]
    for path in left:  # what a writer killed mid-file leaves
        path.write_bytes(b"half")
    again = _analyze(cnn_run, killed, "--resume")
    assert again.returncode == 0, again.stderr
    _compare(whole, killed)
    assert not any(path.exists() for path in left)


def test_resume_refuses_a_changed_run_data_or_options(cnn_run: Path, npz: Path, tmp_path: Path) -> None:
    out = tmp_path / "a"
    _kill_after_first_checkpoint(cnn_run, out, signal.SIGKILL)
    changed = _analyze(cnn_run, out, "--resume", "--k", "5")
    assert changed.returncode == 1 and "options.k 4 -> 5 changed" in changed.stderr, changed.stderr
    other = tmp_path / "other.npz"
    banded_npz(other, 200, 10, width=2, noise=1.0, signal=0.2, n_classes=3, seed=1)
    moved = _analyze(cnn_run, out, "--resume", "--data", str(other))
    assert moved.returncode == 1 and "data.sample" in moved.stderr, moved.stderr
    weights = cnn_run / "model.safetensors"
    saved = weights.read_bytes()
    try:
        import torch
        from safetensors.torch import load_file, save_file

        tensors = load_file(weights)
        first = next(iter(tensors))
        tensors[first] = tensors[first] + torch.ones_like(tensors[first])
        from safetensors import safe_open

        with safe_open(weights, "pt") as f:
            meta = f.metadata()
        save_file(tensors, weights, metadata=meta)
        retrained = _analyze(cnn_run, out, "--resume")
    finally:
        weights.write_bytes(saved)
    assert retrained.returncode == 1 and "run.weights changed" in retrained.stderr, retrained.stderr
    for result in (changed, moved, retrained):
        assert result.stderr.strip().count("\n") == 0 and "Traceback" not in result.stderr
    assert not (out / "summary.json").exists()
    finished = _analyze(cnn_run, out, "--resume")
    assert finished.returncode == 0, finished.stderr
