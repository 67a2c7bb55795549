"""Run-folder files that are not regular files (a FIFO, a link to /dev/zero, a directory), files larger than their
header says, and stale-temp cleanup that must touch only nnsee's own temporary files.

Every reader runs in a child process under a 2 GiB address-space limit and a timeout, so a regression (reading
/dev/zero without end, blocking on a FIFO) fails the test instead of exhausting or hanging the machine.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from nnsee.errors import RunError
from nnsee.io import clean_stale_tmp
from nnsee.models import build_model
from nnsee.train.run import load_run, save_run, save_snapshot

TARGETS = ("run.json", "model.safetensors", "state.safetensors", "state.pt", "snapshots/epoch-0001.safetensors")
LIMIT_BYTES = 2 << 30


def _make_run(folder: Path) -> Path:
    torch.manual_seed(0)
    model = build_model("softmax", (1, 4, 4), 3)
    meta = {"class_names": ["a", "b", "c"], "epoch": 1}
    save_run(folder, model, meta, {"epoch": 1, "model": model.state_dict()})
    save_snapshot(folder, 1, model)
    return folder


CHILD = textwrap.dedent(
    """
    import os, resource, shutil, stat, sys, time
    from pathlib import Path
    resource.setrlimit(resource.RLIMIT_AS, ({limit}, {limit}))
    from nnsee.errors import RunError
    from nnsee.train.run import load_run

    template, work, kind = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    for i, target in enumerate(sys.argv[4:]):
        run = work / str(i)
        shutil.copytree(template, run)
        file = run / target
        if target == "state.pt":  # a run-format-1 resume state
            (run / "state.safetensors").rename(file)
        good = file.read_bytes()
        file.unlink()
        if kind == "fifo":
            os.mkfifo(file)
        elif kind == "dev-zero":
            file.symlink_to("/dev/zero")
        elif kind == "directory":
            file.mkdir()
        elif kind == "sparse-3GiB":  # the good file, then 3 GiB of holes
            with open(file, "wb") as f:
                f.write(good)
                f.truncate(3 << 30)
        started = time.perf_counter()
        try:
            loaded = load_run(run)
            if target.startswith("state"):
                loaded.state()
            if target.startswith("snapshots"):
                loaded.snapshot_state(1)
            outcome = "LOADED"
        except RunError as exc:
            outcome = "REFUSED " + str(exc)
        except BaseException as exc:
            outcome = "CRASHED " + type(exc).__name__ + ": " + str(exc)[:200]
        seconds = time.perf_counter() - started
        print(target, f"{{seconds:.3f}}", outcome.replace(chr(10), " | "), flush=True)
    # VmHWM, this process image's own peak: ru_maxrss would carry the parent's peak across fork and exec
    hwm = [line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM:")][0]
    print("peak_rss_kb", hwm, flush=True)
    """
).format(limit=LIMIT_BYTES)


def _run_child(tmp_path: Path, kind: str) -> tuple[dict[str, tuple[float, str]], int]:
    template = _make_run(tmp_path / "template")
    work = tmp_path / "work"
    work.mkdir()
    try:
        done = subprocess.run(
            [sys.executable, "-c", CHILD, str(template), str(work), kind, *TARGETS],
            capture_output=True, text=True, timeout=120,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"a reader hung on a {kind}: {exc.stdout!r}")
    lines = done.stdout.splitlines()
    assert done.returncode == 0, done.stderr[-2000:]
    results = {}
    for line in lines[:-1]:
        target, seconds, outcome = line.split(" ", 2)
        results[target] = (float(seconds), outcome)
    return results, int(lines[-1].split()[1])


@pytest.mark.parametrize("kind", ["fifo", "dev-zero", "directory", "sparse-3GiB"])
def test_a_run_file_that_is_not_a_regular_file_or_too_large_is_refused_in_bounded_time_and_memory(
    tmp_path: Path, kind: str
) -> None:
    results, peak_kb = _run_child(tmp_path, kind)
    assert set(results) == set(TARGETS)
    for target, (seconds, outcome) in results.items():
        assert outcome.startswith("REFUSED "), (target, outcome)
        assert " | " not in outcome and str(tmp_path / "work") in outcome, (target, outcome)
        assert seconds < 5, (target, seconds)
        if kind != "sparse-3GiB":
            assert "not a regular file" in outcome, (target, outcome)
    assert peak_kb < 1_000_000, peak_kb


def test_a_link_to_a_regular_file_out_of_the_folder_is_followed(tmp_path: Path) -> None:
    """Documented: a symbolic link to a regular file is followed wherever it points (nnsee.io.open_regular)."""
    run = _make_run(tmp_path / "run")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for name in ("model.safetensors", "run.json"):
        shutil.move(run / name, elsewhere / name)
        (run / name).symlink_to(elsewhere / name)
    loaded = load_run(run)
    assert loaded.class_names == ["a", "b", "c"]


def test_a_weights_file_larger_or_smaller_than_its_header_declares_is_refused_before_reading(tmp_path: Path) -> None:
    run = _make_run(tmp_path / "run")
    weights = run / "model.safetensors"
    good = weights.read_bytes()
    for content, why in ((good + b"\0" * 7, "declares"), (good[:-4], "declares"), (b"\1\0\0\0", "shorter")):
        weights.write_bytes(content)
        with pytest.raises(RunError, match=why) as info:
            load_run(run)
        assert str(weights) in str(info.value)


def test_a_huge_run_json_is_refused_by_its_size(tmp_path: Path) -> None:
    run = _make_run(tmp_path / "run")
    text = (run / "run.json").read_text()
    from nnsee.train.run import MAX_RUN_JSON_BYTES

    (run / "run.json").write_text(text[:-2] + ', "padding": "' + "x" * (MAX_RUN_JSON_BYTES + 1) + '"}\n')
    with pytest.raises(RunError, match="more than the"):
        load_run(run)
    json.loads(text)  # the original was fine


# ---------------------------------------------------------------------------------------- stale temp files


def test_stale_temp_cleanup_touches_only_nnsee_temp_names_in_the_run_folder_and_snapshots(tmp_path: Path) -> None:
    run = tmp_path / "run"
    (run / "snapshots").mkdir(parents=True)
    (run / "mine").mkdir()
    users = tmp_path / "users"
    users.mkdir()
    (run / "linked").symlink_to(users)
    ours = [run / ".tmp-run.json-0a1b2c3d4e5f", run / "snapshots" / ".tmp-epoch-0001.safetensors-abcdef012345"]
    kept = [
        run / "mine" / ".tmp-run.json-0a1b2c3d4e5f",  # a user subfolder is never walked
        run / "mine" / "deep" / ".tmp-model.safetensors-abcdef",
        users / ".tmp-run.json-0a1b2c3d4e5f",  # nor one reached through a link
        run / ".tmp-notes",  # not a name nnsee gives
        run / ".tmp-",
        run / "notes.txt",
    ]
    for p in ours + kept:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"x")
    assert sorted(clean_stale_tmp(run)) == sorted(ours)
    assert all(p.exists() for p in kept) and not any(p.exists() for p in ours)


def test_save_run_keeps_a_temp_named_file_in_a_user_subfolder(tmp_path: Path) -> None:
    run = _make_run(tmp_path / "run")
    mine = run / "notes" / ".tmp-draft-abc"
    mine.parent.mkdir()
    mine.write_text("mine")
    _make_run(run)
    assert mine.read_text() == "mine"
    assert os.path.exists(run / "model.safetensors")
