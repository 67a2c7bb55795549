"""Hundreds of snapshots in one report: each evolution view shows at most MAX_SNAPSHOTS, evenly spaced with the first
and the last, and says how many it left out; a run with few snapshots shows every one, with no note."""

from __future__ import annotations

import io
import re
import shutil
from pathlib import Path

import pytest
import torch
from PIL import Image

from nnsee.report import build_report
from nnsee.report.sections.common import MAX_SNAPSHOTS, spread
from nnsee.train.run import load_run, save_snapshot

MANY = 40


def test_spread_keeps_first_last_and_even_steps() -> None:
    assert spread([0, 2, 4]) == [0, 2, 4]
    assert spread(list(range(12))) == list(range(12))
    # 301 epochs: positions i * 300 / 11 rounded, worked out by hand: 0, 27.3, 54.5, 81.8, 109.1, ...
    assert spread(list(range(301))) == [0, 27, 55, 82, 109, 136, 164, 191, 218, 245, 273, 300]
    assert spread(list(range(13)), 3) == [0, 6, 12]
    for n in (13, 50, 1000):
        shown = spread(list(range(n)))
        assert len(set(shown)) == MAX_SNAPSHOTS and shown[0] == 0 and shown[-1] == n - 1


def _with_many_snapshots(run: Path, tmp_path: Path) -> Path:
    """A copy of ``run`` with snapshots at epochs 0 .. MANY - 1, each with slightly different weights."""
    copy = tmp_path / run.name
    shutil.copytree(run, copy, ignore=shutil.ignore_patterns("report"))
    model = load_run(copy).model
    for epoch in range(MANY):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(0.01)
        save_snapshot(copy, epoch, model)
    return copy


@pytest.mark.parametrize("fixture", ["mlp_run", "cnn_run"])
def test_many_snapshots_show_a_bounded_evenly_spaced_selection(fixture: str, request: pytest.FixtureRequest,
                                                                tmp_path: Path) -> None:
    run = _with_many_snapshots(request.getfixturevalue(fixture), tmp_path)
    html = build_report(run, tmp_path / "report").read_text(encoding="utf-8")
    expected = spread(list(range(MANY)))
    assert expected[0] == 0 and expected[-1] == MANY - 1
    note = f"showing {MAX_SNAPSHOTS} evenly spaced snapshots (epochs {', '.join(map(str, expected))}) of {MANY}"
    assert note in html
    if fixture == "mlp_run":
        shown = [int(e) for e in re.findall(r'alt="weights at epoch (\d+)"', html)]
        assert shown == expected
        with Image.open(io.BytesIO((tmp_path / "report" / "evolution.gif").read_bytes())) as gif:
            assert gif.n_frames == MAX_SNAPSHOTS
    else:
        assert f"at each snapshot epoch ({', '.join(map(str, expected))})" in html


def test_few_snapshots_show_every_one(mlp_run: Path, tmp_path: Path) -> None:
    html = build_report(mlp_run, tmp_path / "report").read_text(encoding="utf-8")
    assert [int(e) for e in re.findall(r'alt="weights at epoch (\d+)"', html)] == [0, 2, 4]
    assert "evenly spaced snapshots" not in html
