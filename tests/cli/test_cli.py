"""The command line contract: names, --json output, errors that say what to do."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from tiny import banded_npz

from nnsee.cli import main


@pytest.fixture
def npz_spec(tmp_path: Path) -> str:
    """A small learnable data set as an .npz: class k brightens row k."""
    path = tmp_path / "tiny.npz"
    banded_npz(path, 30, 6, width=1, noise=0.2, signal=0.8, class_names=["<b>zero</b>", 'one "1"', "двa"])
    return str(path)


def _invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_data_info_json(npz_spec: str) -> None:
    code, out, _ = _invoke("data", "info", npz_spec, "--json")
    assert code == 0
    info = json.loads(out)
    assert info["n"] == 90 and info["shape"] == [1, 6, 6]
    assert info["classes"] == ["<b>zero</b>", 'one "1"', "двa"]
    assert sum(info["splits"].values()) == 90


def test_train_evaluate_resume(npz_spec: str, tmp_path: Path) -> None:
    run = tmp_path / "run"
    code, out, err = _invoke(
        "train",
        "--data",
        npz_spec,
        "--model",
        "mlp",
        "--hidden",
        "8",
        "--epochs",
        "3",
        "--lr",
        "0.01",
        "--out",
        str(run),
    )
    assert code == 0, err
    assert "test accuracy" in out
    code, out, _ = _invoke("evaluate", str(run), "--json")
    assert code == 0
    scores = json.loads(out)
    assert {"accuracy", "per_class_accuracy", "confusion_matrix", "n"} <= scores.keys()
    assert np.sum(scores["confusion_matrix"]) == scores["n"]
    code, out, err = _invoke("resume", str(run), "--epochs", "2")
    assert code == 0, err
    assert "after 5 epochs" in out
    assert json.loads((run / "run.json").read_text())["epoch"] == 5


def test_train_refuses_to_overwrite_a_run(npz_spec: str, tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert _invoke("train", "--data", npz_spec, "--epochs", "1", "--out", str(run))[0] == 0
    before = (run / "model.safetensors").read_bytes()
    code, _, err = _invoke("train", "--data", npz_spec, "--epochs", "1", "--out", str(run))
    assert code != 0 and "nnsee resume" in err
    assert (run / "model.safetensors").read_bytes() == before


def test_bad_spec_is_one_clear_line(tmp_path: Path) -> None:
    code, _, err = _invoke("data", "info", str(tmp_path / "nope.npz"))
    assert code == 1
    assert err.startswith("error: ") and "Traceback" not in err


def test_divergence_exits_with_advice(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "raw.npz", x=rng.uniform(0, 255, (60, 4, 4)), y=np.repeat(np.arange(3), 20))
    code, _, err = _invoke(
        "train",
        "--data",
        str(tmp_path / "raw.npz"),
        "--model",
        "mlp",
        "--hidden",
        "8",
        "--optimizer",
        "sgd",
        "--batch-size",
        "8",
        "--lr",
        "1e30",
        "--epochs",
        "3",
        "--standardize",
        "none",
        "--out",
        str(tmp_path / "run"),
    )
    assert code == 1
    assert "learning rate" in err


def test_console_script_runs() -> None:
    done = subprocess.run([sys.executable, "-m", "nnsee.cli", "--help"], capture_output=True, text=True, check=True)
    for command in ("train", "resume", "evaluate", "data", "demo"):
        assert command in done.stdout


def test_data_info_lists_at_most_100_classes_as_text(tmp_path):
    """A 300-class npz: 100 rows and a line saying how many more; --json keeps every class."""
    path = tmp_path / "many.npz"
    np.savez(path, x=np.random.default_rng(0).random((900, 4, 4)).astype(np.float32), y=np.arange(900) % 300)
    text = CliRunner().invoke(main, ["data", "info", str(path)])
    assert text.exit_code == 0, text.output
    assert "... and 200 more classes (--json lists every class)" in text.output
    assert len(text.output.splitlines()) < 110
    listed = CliRunner().invoke(main, ["data", "info", str(path), "--json"])
    assert len(json.loads(listed.output)["class_counts"]) == 300
