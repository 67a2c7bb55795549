"""Atomic writes: a reader sees the old file or the complete new one; failures and kills leave the old file."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from torch import nn

import nnsee.io as atomic
from nnsee.errors import RunError
from nnsee.io import atomic_path, atomic_write, atomic_write_bytes, atomic_write_text, clean_stale_tmp
from nnsee.train.checkpoint import load_state, save_state, save_weights
from nnsee.train.run import load_run, save_run


def test_io_is_the_bottom_floor() -> None:
    """``nnsee.io`` needs only ``nnsee.errors``; writing an image file does not import the training package."""
    code = (
        "import sys, nnsee.io; loaded = sorted(m for m in sys.modules if m.startswith('nnsee')); "
        "import nnsee.render.encode; print(loaded, any(m.startswith('nnsee.train') for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120).stdout
    assert out.split() == ["['nnsee',", "'nnsee.errors',", "'nnsee.io']", "False"], out


def tmp_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("**/.tmp-*"))


def test_write_bytes_and_text_replace_atomically(tmp_path: Path) -> None:
    target = tmp_path / "a.bin"
    atomic_write_bytes(target, b"one")
    atomic_write_bytes(target, b"two" * 1_000_000)
    assert target.read_bytes() == b"two" * 1_000_000
    atomic_write_text(tmp_path / "a.txt", "héllo")
    assert (tmp_path / "a.txt").read_text(encoding="utf-8") == "héllo"
    assert tmp_files(tmp_path) == []


def test_tmp_file_is_beside_the_target(tmp_path: Path) -> None:
    seen = []

    def write(tmp: Path) -> None:
        seen.append(tmp)
        tmp.write_bytes(b"x")

    atomic_write(tmp_path / "w.json", write)
    assert seen[0].parent == tmp_path and seen[0].name.startswith(".tmp-w.json-")
    assert (tmp_path / "w.json").read_bytes() == b"x"


@pytest.mark.parametrize("exc_type", [ValueError, KeyboardInterrupt])
def test_exception_in_body_keeps_old_file_and_removes_tmp(tmp_path: Path, exc_type: type[BaseException]) -> None:
    target = tmp_path / "f"
    target.write_bytes(b"old")
    with pytest.raises(exc_type), atomic_path(target) as tmp:
        tmp.write_bytes(b"half")
        raise exc_type("boom")
    assert target.read_bytes() == b"old"
    assert tmp_files(tmp_path) == []


# ---------------------------------------------------------------------- ENOSPC / EACCES during a save


class _FailingFile:
    """Writes part of the data, then fails like a full disk or a read-only mount."""

    def __init__(self, f: object, exc: OSError) -> None:
        self.f, self.exc = f, exc

    def write(self, data: bytes) -> int:
        self.f.write(bytes(data)[: len(data) // 2])
        self.f.flush()
        raise self.exc

    def __enter__(self) -> _FailingFile:
        return self

    def __exit__(self, *a: object) -> None:
        self.f.close()


def _os_error(code: int) -> OSError:
    cls = PermissionError if code == errno.EACCES else OSError
    return cls(code, os.strerror(code))


def _savers(tmp_path: Path) -> dict[str, tuple[Path, Callable[[Path], object]]]:
    model = nn.Linear(4, 3)
    return {
        "text": (tmp_path / "x.json", lambda p: atomic_write_text(p, "new" * 100)),
        "weights": (tmp_path / "model.safetensors", lambda p: save_weights(p, model, {"class_names": ["a"] * 3})),
        "state": (tmp_path / "state.safetensors", lambda p: save_state(p, {"epoch": 1, "model": model.state_dict()})),
        "run": (
            tmp_path / "run" / "model.safetensors",
            lambda p: save_run(p.parent, model, {"class_names": list("abc")}),
        ),
    }


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EACCES])
@pytest.mark.parametrize("where", ["write", "replace"])
@pytest.mark.parametrize("what", ["text", "weights", "state", "run"])
def test_failed_write_reports_and_keeps_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int, where: str, what: str
) -> None:
    target, save = _savers(tmp_path)[what]
    target.parent.mkdir(exist_ok=True)
    if what == "run":
        save(target)  # a complete run first: its files must survive
    else:
        target.write_bytes(b"previous content")
    before = {p: p.read_bytes() for p in target.parent.iterdir()}

    if where == "replace":

        def fail_replace(src: object, dst: object) -> None:
            raise _os_error(code)

        monkeypatch.setattr(atomic.os, "replace", fail_replace)
    else:
        real_open = open
        monkeypatch.setattr(
            atomic,
            "open",
            lambda p, mode="r", *a, **k: (
                _FailingFile(real_open(p, mode, *a, **k), _os_error(code))
                if "x" in mode
                else real_open(p, mode, *a, **k)
            ),
            raising=False,
        )

    with pytest.raises(RunError) as info:
        save(target)
    message = str(info.value)
    assert str(target) in message and "intact" in message and os.strerror(code) in message
    assert {p: p.read_bytes() for p in target.parent.iterdir()} == before
    assert tmp_files(tmp_path) == []


def test_failed_first_write_says_nothing_was_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(atomic.os, "replace", lambda s, d: (_ for _ in ()).throw(_os_error(errno.ENOSPC)))
    with pytest.raises(RunError, match="nothing was written"):
        atomic_write_text(tmp_path / "new.json", "{}")
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------- stale tmp files and SIGKILL


def test_clean_stale_tmp(tmp_path: Path) -> None:
    (tmp_path / "snapshots").mkdir()
    stale = [tmp_path / ".tmp-run.json-abc", tmp_path / "snapshots" / ".tmp-epoch-0001.safetensors-def"]
    keep = [tmp_path / "run.json", tmp_path / ".hidden", tmp_path / "snapshots" / "epoch-0001.safetensors"]
    for p in stale + keep:
        p.write_bytes(b"x")
    assert sorted(clean_stale_tmp(tmp_path)) == sorted(stale)
    assert all(p.exists() for p in keep) and not any(p.exists() for p in stale)
    assert clean_stale_tmp(tmp_path / "missing") == []


CHILD = textwrap.dedent(
    """
    import os, sys, time
    import torch
    from torch import nn
    import nnsee.io as atomic
    from nnsee.train.run import save_run

    out, slow = sys.argv[1], sys.argv[2] == "slow"
    if slow:  # a slow disk: each fsync takes a while, so the kill lands while a .tmp file is being written
        real_fsync = os.fsync
        def slow_fsync(fd):
            time.sleep(0.1)
            real_fsync(fd)
        atomic.os.fsync = slow_fsync
    torch.manual_seed(0)
    model = nn.Linear(1000, 1000)
    for epoch in range(1, 10_000):
        with torch.no_grad():
            model.bias.fill_(epoch)
        state = {"epoch": epoch, "model": model.state_dict(), "torch_rng": torch.get_rng_state()}
        save_run(out, model, {"class_names": [str(i) for i in range(1000)], "epoch": epoch}, state)
        print(epoch, flush=True)
    """
)


def _kill_during_save(out: Path, slow: bool) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(out), "slow" if slow else "fast"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "1", "the child could not save a first run"
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not tmp_files(out):
            time.sleep(0.001)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait()
    assert child.returncode == -signal.SIGKILL


def _check_intact(out: Path) -> int:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a kill between two files may (rightly) warn
        run = load_run(out, model=nn.Linear(1000, 1000))
    epoch = int(run.model.bias[0])
    assert torch.all(run.model.bias == epoch)  # one complete save, not a mix
    state = load_state(out / "state.safetensors")
    assert torch.all(state["model"]["bias"] == state["epoch"])
    assert abs(state["epoch"] - run.epoch) <= 1 and abs(epoch - run.epoch) <= 1
    return epoch


def test_sigkill_during_save_leaves_old_files_and_next_save_cleans_tmp(tmp_path: Path) -> None:
    out = tmp_path / "run"
    _kill_during_save(out, slow=True)
    leftovers = tmp_files(out)
    assert leftovers, "the kill should have landed while a .tmp file was written"
    _check_intact(out)
    save_run(out, nn.Linear(1000, 1000), {"class_names": [str(i) for i in range(1000)], "epoch": 0})
    assert tmp_files(out) == []
    assert not any(p.exists() for p in leftovers)


def test_sigkill_on_a_fast_disk_leaves_a_loadable_run(tmp_path: Path) -> None:
    out = tmp_path / "run"
    _kill_during_save(out, slow=False)
    _check_intact(out)
    clean_stale_tmp(out)
    assert tmp_files(out) == []
