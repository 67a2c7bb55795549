"""nnsee.distributed: the rank blocks, the collectives under a real 2-process torchrun (gloo), python -m nnsee."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from nnsee.distributed import Dist, block, rank_positions, setup


def _dist(rank: int, world: int) -> Dist:
    return Dist(rank, world, rank, torch.device("cpu"))


@pytest.mark.parametrize("world", [1, 2, 3, 7])
@pytest.mark.parametrize("n", [0, 1, 2, 5, 6, 100, 101])
def test_rank_positions_follow_array_split(n: int, world: int) -> None:
    expected = np.array_split(np.arange(n), world)  # the independent reference
    got = [rank_positions(n, _dist(r, world)) for r in range(world)]
    for e, g in zip(expected, got, strict=True):
        assert g.dtype == np.int64 and np.array_equal(e, g)
    assert np.array_equal(np.concatenate(got), np.arange(n))
    stops = np.cumsum([len(e) for e in expected]).tolist()
    assert [block(n, r, world) for r in range(world)] == list(zip([0, *stops[:-1]], stops, strict=True))


def test_no_torchrun_means_one_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert setup("cpu") is None
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert setup("cpu") is None
    assert np.array_equal(rank_positions(4, None), np.arange(4))


def _env() -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    for key in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    return env


def test_collectives_under_torchrun(tmp_path: Path) -> None:
    script = tmp_path / "probe.py"
    script.write_text(textwrap.dedent("""
        import json, sys
        from nnsee.distributed import (all_agree, all_sum, broadcast_from_main, gather_to_main, rank_positions,
                                       setup, teardown)
        d = setup("cpu")
        out = {"rank": d.rank, "world": d.world_size, "gathered": gather_to_main(d, [d.rank] * (d.rank + 1)),
               "broadcast": broadcast_from_main(d, "from %d" % d.rank), "agree_all": all_agree(d, True),
               "agree_one_fails": all_agree(d, d.rank != 1), "sum": all_sum(d, [d.rank + 0.5, 1.0]),
               "block": rank_positions(5, d).tolist()}
        teardown(d)
        open(sys.argv[1] + "/rank%d.json" % d.rank, "w").write(json.dumps(out))
    """))
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                           str(script), str(tmp_path)], env=_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    import json

    r0, r1 = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1))
    assert r0["gathered"] == [[0], [1, 1]] and r1["gathered"] is None
    assert r0["broadcast"] == r1["broadcast"] == "from 0"
    assert r0["agree_all"] and r1["agree_all"]
    assert not r0["agree_one_fails"] and not r1["agree_one_fails"]
    assert r0["sum"] == r1["sum"] == [2.0, 2.0]
    assert (r0["block"], r1["block"]) == ([0, 1, 2], [3, 4])


def test_python_dash_m_nnsee() -> None:
    proc = subprocess.run([sys.executable, "-m", "nnsee", "--help"], env=_env(), capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0 and "Usage: nnsee" in proc.stdout and "train" in proc.stdout


def test_threads_per_rank_follow_the_cores_unless_the_user_chose(monkeypatch: pytest.MonkeyPatch) -> None:
    from nnsee.distributed import threads_per_rank

    monkeypatch.setattr(os, "cpu_count", lambda: 16)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert threads_per_rank(4) == 4 and threads_per_rank(32) == 1
    # torchrun's own default: set for the workers, absent from the launcher's starting environment
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert threads_per_rank(4, launcher_environ=b"PATH=/bin\0HOME=/root\0") == 4
    # the user's choice: the launcher started with it
    assert threads_per_rank(4, launcher_environ=b"PATH=/bin\0OMP_NUM_THREADS=1\0") is None
