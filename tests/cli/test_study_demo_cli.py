"""`nnsee study overfit` and `nnsee demo` from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from tiny import banded_npz

from nnsee.cli import main


def test_study_overfit_writes_its_report_and_json(tmp_path: Path) -> None:
    banded_npz(tmp_path / "d.npz", 40, 8)
    result = CliRunner().invoke(main, ["study", "overfit", "--data", str(tmp_path / "d.npz"), "--out",
                                       str(tmp_path / "study"), "--per-class", "5,20", "--l2", "0,0.1",
                                       "--hidden", "8", "--epochs", "3", "--json"])
    assert result.exit_code == 0, result.stderr
    answer = json.loads(result.stdout)
    assert [r["name"] for r in answer["runs"]] == ["5-l2-0", "5-l2-0.1", "20-l2-0", "20-l2-0.1"]
    html = (tmp_path / "study" / "index.html").read_text(encoding="utf-8")
    assert "high-freq. share" in html and html.count('class="run"') == 4
    assert (tmp_path / "study" / "weights.png").exists()


def test_study_rejects_bad_l2_list(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["study", "overfit", "--data", "digits", "--out", str(tmp_path / "s"),
                                       "--l2", "zero"])
    assert result.exit_code == 2 and "0,0.03,0.3" in result.stderr


@pytest.mark.slow
def test_demo_on_digits_writes_every_report(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["demo", "--out", str(tmp_path / "demo"), "--no-fashion"])
    assert result.exit_code == 0, result.stderr
    index = (tmp_path / "demo" / "index.html").read_text(encoding="utf-8")
    for link in ("digits-softmax/report/index.html", "digits-mlp/report/index.html", "overfit-study/index.html",
                 "standardization-study/index.html"):
        assert link in index and (tmp_path / "demo" / link).exists()
    assert "file://" in result.stdout
    accuracies = [float(line.split("test accuracy")[1].split()[0]) for line in result.stdout.splitlines()
                  if "test accuracy" in line]
    assert accuracies[0] >= 0.88 and accuracies[1] >= 0.92


def test_study_standardization_trains_one_softmax_per_mode(tmp_path: Path) -> None:
    banded_npz(tmp_path / "d.npz", 30, 6)
    result = CliRunner().invoke(main, ["study", "standardization", "--data", str(tmp_path / "d.npz"), "--out",
                                       str(tmp_path / "s"), "--epochs", "3"])
    assert result.exit_code == 0, result.stderr
    assert [line.split()[0] for line in result.stdout.splitlines()[:3]] == ["image", "pixel", "none"]
    html = (tmp_path / "s" / "index.html").read_text(encoding="utf-8")
    assert html.count("Templates learned with") == 3
