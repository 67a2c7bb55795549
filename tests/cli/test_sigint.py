"""A real Ctrl-C (SIGINT) sent to `nnsee train`: the run folder stays complete and `nnsee resume` finishes it."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from nnsee.train import load_run


def _default_sigint() -> None:
    """In the child before exec: a test run from a background job inherits SIGINT ignored; Ctrl-C must act."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _ignores_sigint(pid: int) -> bool:
    status = Path(f"/proc/{pid}/status")
    if not status.exists():
        return False
    mask = next(int(line.split()[1], 16) for line in status.read_text().splitlines() if line.startswith("SigIgn:"))
    return bool(mask >> (signal.SIGINT - 1) & 1)


def test_sigint_mid_training_leaves_a_resumable_run(tmp_path: Path) -> None:
    run = tmp_path / "run"
    command = [sys.executable, "-m", "nnsee.cli", "train", "--data", "digits", "--model", "mlp", "--hidden", "64",
               "--epochs", "200", "--batch-size", "16", "--out", str(run)]
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                             preexec_fn=_default_sigint)
    try:
        assert not _ignores_sigint(child.pid), "the child inherited SIGINT ignored: Ctrl-C would never reach it"
        deadline = time.monotonic() + 120
        # Wait until at least one epoch has been written, then interrupt in the middle of a later one.
        while time.monotonic() < deadline and child.poll() is None:
            meta = run / "run.json"
            if meta.exists() and json.loads(meta.read_text()).get("epoch", 0) >= 1:
                break
            time.sleep(0.05)
        time.sleep(0.3)
        child.send_signal(signal.SIGINT)
        _, err = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
        child.wait(10)
    assert child.returncode == 130, err
    assert "nnsee resume" in err
    saved = load_run(run)
    assert saved.meta["status"] == "training" and saved.epoch >= 1
    assert len(saved.history["epoch"]) == saved.epoch
    resumed = subprocess.run([sys.executable, "-m", "nnsee.cli", "resume", str(run), "--epochs", "1", "--json"],
                             capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["epoch"] == saved.epoch + 1
