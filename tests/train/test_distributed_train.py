"""``torchrun --nproc-per-node 2 -m nnsee train`` (gloo, CPU) against one process: the same model up to float
rounding, only rank 0 writes, resume under torchrun continues, a killed rank leaves the last complete epoch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from nnsee.distributed import Dist
from nnsee.errors import TrainingError

ROOT = Path(__file__).resolve().parents[2]
TRAIN = ["train", "--data", "digits", "--model", "mlp", "--hidden", "32", "--batch-size", "63", "--device", "cpu",
         "--seed", "5", "--json"]

# Loaded into every process of the job (PYTHONPATH): on ranks other than 0 it logs every file-system write into the
# run folder (Python's audit events: opens for writing, renames, removals, new folders); with NNSEE_TEST_KILL_AT=k,
# rank 1 kills itself (SIGKILL) at its k-th training step.
SITECUSTOMIZE = '''
import os, sys
_rank = os.environ.get("RANK")
_watch = os.environ.get("NNSEE_TEST_WATCH")
if _rank not in (None, "0") and _watch:
    _log = open(os.path.join(os.environ["NNSEE_TEST_LOG"], "rank%s.log" % _rank), "a", buffering=1)
    _busy = []
    def _hook(event, args):
        if _busy or event not in ("open", "os.rename", "os.remove", "os.mkdir", "os.rmdir", "os.truncate"):
            return
        path = args[0] if isinstance(args[0], (str, bytes, os.PathLike)) else None
        if path is None or _watch not in os.path.abspath(os.fsdecode(path)):
            return
        if event == "open" and not (args[2] & (os.O_WRONLY | os.O_RDWR | os.O_CREAT)) and "w" not in str(args[1]) \\
                and "a" not in str(args[1]) and "x" not in str(args[1]) and "+" not in str(args[1]):
            return
        _busy.append(1)
        _log.write("%s %s\\n" % (event, os.fsdecode(path)))
        _busy.pop()
    sys.addaudithook(_hook)
if _rank == "1" and os.environ.get("NNSEE_TEST_KILL_AT"):
    import signal
    import torch
    import torch.nn.functional as F
    _real, _count, _at = F.cross_entropy, [0], int(os.environ["NNSEE_TEST_KILL_AT"])
    def _cross_entropy(*args, **kwargs):
        if torch.is_grad_enabled():
            _count[0] += 1
            if _count[0] == _at:
                os.kill(os.getpid(), signal.SIGKILL)
        return _real(*args, **kwargs)
    F.cross_entropy = _cross_entropy
'''


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    site = tmp_path / "site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=f"{site}{os.pathsep}{ROOT}", NNSEE_TEST_LOG=str(tmp_path),
               **extra)
    for key in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    return env


def _nnsee(args: list[str], env: dict[str, str], ranks: int = 0) -> subprocess.CompletedProcess[str]:
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(ranks)] \
        if ranks else [sys.executable]
    return subprocess.run([*launcher, "-m", "nnsee", *args], env=env, capture_output=True, text=True, timeout=300,
                          cwd=env["NNSEE_TEST_LOG"])


def _json_lines(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def _max_diff(a: Path, b: Path) -> float:
    wa, wb = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    assert wa.keys() == wb.keys()
    return max(float((wa[k] - wb[k]).abs().max()) for k in wa)


def test_two_ranks_train_like_one_process_and_only_rank_0_writes(tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    env = _env(tmp_path, NNSEE_TEST_WATCH=str(two))
    single = _nnsee([*TRAIN, "--epochs", "3", "--out", str(one)], env)
    assert single.returncode == 0, single.stderr[-2000:]
    double = _nnsee([*TRAIN, "--epochs", "3", "--out", str(two)], env, ranks=2)
    assert double.returncode == 0, double.stderr[-3000:]
    (a,), reports = _json_lines(single.stdout), _json_lines(double.stdout)
    assert len(reports) == 1  # only rank 0 prints
    b = reports[0]
    print(f"test accuracy one process {a['test_accuracy']:.4f}, two ranks {b['test_accuracy']:.4f}; "
          f"max weight difference {_max_diff(one, two):.3g}")
    assert abs(a["test_accuracy"] - b["test_accuracy"]) <= 0.01
    assert _max_diff(one, two) < 1e-4  # the same updates up to float rounding (1.4e-7 measured)
    ha, hb = (json.loads((p / "run.json").read_text())["history"] for p in (one, two))
    assert hb["epoch"] == [1, 2, 3]
    assert max(abs(x - y) for x, y in zip(ha["train_loss"], hb["train_loss"], strict=True)) < 1e-5
    assert max(abs(x - y) for x, y in zip(ha["val_loss"], hb["val_loss"], strict=True)) < 1e-5
    assert ha["train_accuracy"] == pytest.approx(hb["train_accuracy"], abs=1e-9)
    log = tmp_path / "rank1.log"
    assert not log.exists() or not log.read_text(), f"rank 1 wrote into the run folder:\n{log.read_text()[:500]}"


def test_resume_under_torchrun_continues(tmp_path: Path) -> None:
    full, part = tmp_path / "full", tmp_path / "part"
    env = _env(tmp_path, NNSEE_TEST_WATCH=str(part))
    assert _nnsee([*TRAIN, "--epochs", "3", "--out", str(full)], env).returncode == 0
    first = _nnsee([*TRAIN, "--epochs", "3", "--out", str(part)], env, ranks=2)
    assert first.returncode == 0, first.stderr[-3000:]
    more = _nnsee(["resume", str(part), "--epochs", "2", "--device", "cpu", "--json"], env, ranks=2)
    assert more.returncode == 0, more.stderr[-3000:]
    (report,) = _json_lines(more.stdout)
    assert report["epoch"] == 5 and report["status"] == "completed"
    assert json.loads((part / "run.json").read_text())["history"]["epoch"] == [1, 2, 3, 4, 5]
    again = _nnsee(["resume", str(full), "--epochs", "2", "--device", "cpu", "--json"], env)  # one process, 5 epochs
    assert again.returncode == 0, again.stderr[-2000:]
    assert _max_diff(full, part) < 1e-4
    log = tmp_path / "rank1.log"
    assert not log.exists() or not log.read_text(), f"rank 1 wrote into the run folder:\n{log.read_text()[:500]}"


def test_a_killed_rank_stops_the_job_and_leaves_the_last_complete_epoch(tmp_path: Path) -> None:
    out = tmp_path / "run"
    # digits: 4,000 training images at batch 63 are 64 steps an epoch (ranks take 32 + 31); step 94 is in epoch 2
    proc = _nnsee([*TRAIN, "--epochs", "3", "--out", str(out)], _env(tmp_path, NNSEE_TEST_KILL_AT="94"), ranks=2)
    assert proc.returncode != 0
    ours = [line for line in proc.stderr.splitlines() if line.startswith(("error:", "interrupted"))]
    assert ours and all("holds epoch 1" in line for line in ours), proc.stderr[-3000:]
    assert "Traceback" not in "\n".join(line for line in proc.stderr.splitlines() if "[rank0]" in line)
    meta = json.loads((out / "run.json").read_text())
    assert meta["epoch"] == 1 and meta["status"] == "training" and meta["history"]["epoch"] == [1]
    assert sorted(p.name for p in out.iterdir()) == ["model.safetensors", "run.json", "state.safetensors"]
    done = _nnsee(["resume", str(out), "--device", "cpu", "--json"], _env(tmp_path))
    assert done.returncode == 0, done.stderr[-2000:]
    assert _json_lines(done.stdout)[0]["epoch"] == 3


def test_lbfgs_and_a_batch_smaller_than_the_ranks_are_refused() -> None:
    from tiny import make_splits

    from nnsee.models import build_model
    from nnsee.train import TrainConfig, fit

    splits = make_splits()
    fake = Dist(0, 2, 0, torch.device("cpu"))  # refused before any collective: no process group needed
    model = build_model("softmax", splits.shape, splits.train.n_classes)
    with pytest.raises(TrainingError, match="L-BFGS .* one process"):
        fit(model, splits, TrainConfig(optimizer="lbfgs", epochs=1), dist=fake, progress=False)
    with pytest.raises(TrainingError, match="batch size 1 is smaller than the 2 processes"):
        fit(model, splits, TrainConfig(batch_size=1, epochs=1), dist=fake, progress=False)


def test_sitecustomize_is_python() -> None:
    compile(textwrap.dedent(SITECUSTOMIZE), "sitecustomize.py", "exec")


def test_early_stopping_stops_every_rank_at_the_one_process_epoch(tmp_path: Path) -> None:
    env = _env(tmp_path)
    # val loss 0.464 0.338 0.306 0.304 0.276 0.297: stops at 6. (At --lr 0.01 the dynamics amplify rounding: even one
    # process summing each batch in two halves, as two ranks do, parts from the plain run by 1.6e-2 in 2 epochs.)
    args = [*TRAIN, "--epochs", "20", "--patience", "1", "--lr", "0.003"]
    one = _nnsee([*args, "--out", str(tmp_path / "one")], env)
    two = _nnsee([*args, "--out", str(tmp_path / "two")], env, ranks=2)
    assert one.returncode == 0 and two.returncode == 0, two.stderr[-3000:]
    (a,), (b,) = _json_lines(one.stdout), _json_lines(two.stdout)
    assert a["status"] == b["status"] == "early-stopped" and a["epoch"] == b["epoch"] == 6
    assert _max_diff(tmp_path / "one", tmp_path / "two") < 1e-4  # both keep epoch 5's weights


def test_ctrl_c_on_torchrun_stops_every_rank_at_the_last_complete_epoch(tmp_path: Path) -> None:
    import signal
    import time

    out = tmp_path / "run"
    env = _env(tmp_path)
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
    proc = subprocess.Popen([*launcher, "-m", "nnsee", *TRAIN, "--epochs", "200", "--out", str(out)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if json.loads((out / "run.json").read_text())["epoch"] >= 2:
                break
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)  # what Ctrl-C sends to the launcher; it passes SIGINT on to every rank
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode != 0
    # Rank 0 says it was interrupted; or, when rank 1 stopped first while rank 0 waited in a collective (where no
    # Python signal handler runs), that the other process stopped. Either way one line naming the epoch kept.
    said = [line for line in stderr.splitlines() if line.startswith(("interrupted during epoch", "error:"))]
    assert len(said) == 1, stderr[-3000:]  # rank 0 only
    if said[0].startswith("interrupted"):
        (report,) = _json_lines(stdout)  # no pass over the test set on the way out
        assert report["status"] == "interrupted" and report["test_accuracy"] is None
    meta = json.loads((out / "run.json").read_text())
    assert f"holds epoch {meta['epoch']}: continue with `nnsee resume {out}`" in said[0], said[0]
    assert meta["status"] == "training" and meta["history"]["epoch"] == list(range(1, meta["epoch"] + 1))
    assert sorted(p.name for p in out.iterdir()) == ["model.safetensors", "run.json", "state.safetensors"]
    more = _nnsee(["resume", str(out), "--epochs", "1", "--device", "cpu", "--json"], env, ranks=2)
    assert more.returncode == 0, more.stderr[-3000:]
    assert _json_lines(more.stdout)[0]["epoch"] == meta["epoch"] + 1


def test_two_ranks_streaming_with_workers_train_like_one_process_in_memory(tmp_path: Path) -> None:
    import numpy as np

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, 3000)
    images = (rng.random((3000, 1, 12, 12)) * 0.5 + 0.1 * labels[:, None, None, None]).astype(np.float32)
    np.savez(tmp_path / "set.npz", images=images, labels=labels, class_names=np.array(["a", "b", "c", "d"]))
    env = _env(tmp_path)
    args = [*TRAIN[TRAIN.index("--model"):], "--data", str(tmp_path / "set.npz"), "--epochs", "2"]
    one = _nnsee(["train", *args, "--out", str(tmp_path / "one"), "--no-stream"], env)
    two = _nnsee(["train", *args, "--out", str(tmp_path / "two"), "--stream", "--workers", "1"], env, ranks=2)
    assert one.returncode == 0 and two.returncode == 0, two.stderr[-3000:]
    (a,), (b,) = _json_lines(one.stdout), _json_lines(two.stdout)
    assert a["test_accuracy"] == b["test_accuracy"]
    assert _max_diff(tmp_path / "one", tmp_path / "two") < 1e-4
