"""``torchrun --nproc-per-node 2 -m nnsee analyze`` (gloo, CPU) against one process, and a rank that dies."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nnsee.analysis import load_analysis

ARGS = ["--split", "train", "--layers", "relu1,conv2", "--k", "6", "--methods", "saliency", "--batch-size", "8",
        "--shard-size", "24", "--device", "cpu", "--no-progress"]
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "NNSEE_DIST_TIMEOUT": "60"}

# Run as a torchrun script: the nnsee CLI, with rank 1's model dying (os._exit) at its 5th forward pass.
DYING = """
import os, sys
import nnsee.train
from nnsee.cli import main

load_run = nnsee.train.load_run

def dying_load_run(*args, **kwargs):
    run = load_run(*args, **kwargs)
    if os.environ["RANK"] == "1":
        forward, calls = run.model.forward, [0]
        def dies(x):
            calls[0] += 1
            if calls[0] == 5:
                os._exit(3)
            return forward(x)
        run.model.forward = dies
    return run

nnsee.train.load_run = dying_load_run
main(sys.argv[1:], prog_name="nnsee")
"""


def _run(cmd: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=300)


def test_two_ranks_give_the_one_process_result(cnn_run: Path, tmp_path: Path) -> None:
    one = _run([sys.executable, "-m", "nnsee", "analyze", str(cnn_run), "--out", str(tmp_path / "one"), *ARGS])
    assert one.returncode == 0, one.stderr
    two = _run([*TORCHRUN, "-m", "nnsee", "analyze", str(cnn_run), "--out", str(tmp_path / "two"), *ARGS])
    assert two.returncode == 0, two.stderr
    a, b = load_analysis(tmp_path / "one"), load_analysis(tmp_path / "two")
    assert b.summary["world_size"] == 2 and a.summary["world_size"] == 1
    for key in ("n", "n_skipped", "accuracy", "confusion_matrix", "predictions", "labels"):
        assert a.summary[key] == b.summary[key], key
    np.testing.assert_allclose(a.probabilities(), b.probabilities(), rtol=1e-5, atol=1e-7)
    ties = 0
    for layer in ("relu1", "conv2"):
        ta, tb = a.top(layer), b.top(layer)
        np.testing.assert_allclose(ta["values"], tb["values"], rtol=1e-6)  # float32 rounding at most
        differ = ta["index"] != tb["index"]
        close = np.isclose(ta["values"], tb["values"], rtol=1e-6)
        assert np.all(close[differ]), "an index differs where the activations do not tie"
        ties += int(differ.sum())
    print(f"top-k entries that differ between 1 and 2 ranks (activation ties within float32 rounding): {ties}")
    assert ties <= 2
    positions = np.concatenate([p for p, _ in b.maps("saliency")])
    np.testing.assert_array_equal(positions, np.arange(a.n))
    np.testing.assert_allclose(a.class_means("saliency"), b.class_means("saliency"), rtol=1e-6,
                               atol=1e-7 * np.abs(a.class_means("saliency")).max())
    assert {p.name for p in (tmp_path / "two" / "ranks").iterdir()} == {"rank-0", "rank-1"}


def test_a_rank_that_dies_stops_the_others_and_leaves_no_summary(cnn_run: Path, tmp_path: Path) -> None:
    script = tmp_path / "dying.py"
    script.write_text(DYING)
    out = tmp_path / "a"
    dead = _run([*TORCHRUN, str(script), "analyze", str(cnn_run), "--out", str(out), *ARGS])
    assert dead.returncode != 0
    assert not (out / "summary.json").exists()
    assert "error: rank 0 stopped (a rank failed, or torchrun stopped it)" in dead.stderr, dead.stderr[-3000:]
    assert "nnsee/" not in dead.stderr  # no traceback through nnsee's code (torchrun prints its own)
    resumed = _run([*TORCHRUN, "-m", "nnsee", "analyze", str(cnn_run), "--out", str(out), *ARGS, "--resume"])
    assert resumed.returncode == 0, resumed.stderr
    assert load_analysis(out).n == 480


@pytest.mark.parametrize("world", [3])
def test_resume_under_another_number_of_ranks_is_refused(cnn_run: Path, tmp_path: Path, world: int) -> None:
    out = tmp_path / "a"
    assert _run([sys.executable, "-m", "nnsee", "analyze", str(cnn_run), "--out", str(out), *ARGS,
                 "--shard-size", "1000"]).returncode == 0
    (out / "summary.json").unlink()  # as if stopped before the end
    again = _run([*TORCHRUN, "-m", "nnsee", "analyze", str(cnn_run), "--out", str(out), *ARGS, "--shard-size",
                  "1000", "--resume"])
    assert again.returncode == 1 and "options.world_size 1 -> 2" in again.stderr, again.stderr[-2000:]


ONE_IMAGE = """
import sys, numpy as np, torch
from nnsee.analysis import analyze
from nnsee.data.imageset import ImageSet
from nnsee.distributed import setup, teardown
from nnsee.models import build_model
dist = setup("cpu")
data = ImageSet(np.random.default_rng(0).uniform(size=(1, 1, 8, 8)).astype(np.float32), np.array([1]), ["a", "b"])
torch.manual_seed(0)
model = build_model("cnn", (1, 8, 8), 2, channels=[2], kernel=3)
a = analyze(model, data, sys.argv[1], dist=dist, layers=["conv1"], methods=["saliency"], batch_size=4)
assert a.n == 1 and a.summary["predictions"] == [int(model(torch.from_numpy(data.images)).argmax())]
teardown(dist)
"""


def test_more_ranks_than_images(tmp_path: Path) -> None:
    """Rank 1 has no image: it writes its empty part, and both ranks return the one image's analysis."""
    script = tmp_path / "one.py"
    script.write_text(ONE_IMAGE)
    done = _run([*TORCHRUN, str(script), str(tmp_path / "a")])
    assert done.returncode == 0, done.stderr[-2000:]
    assert [p for p, _ in load_analysis(tmp_path / "a").maps("saliency")][0].tolist() == [0]
