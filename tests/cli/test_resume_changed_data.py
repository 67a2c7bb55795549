"""Resume after the data set changed: refused, saying what changed, unless --allow-changed-data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from click.testing import CliRunner
from PIL import Image

from nnsee.cli import main


def _folder(root: Path, per_class: int) -> None:
    rng = np.random.default_rng(0)
    for k in range(2):
        (root / f"c{k}").mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            a = (rng.uniform(0, 60, (8, 8)) + 150 * (np.arange(8)[:, None] // 4 == k)).astype(np.uint8)
            Image.fromarray(a).save(root / f"c{k}" / f"{i}.png")


def test_resume_refuses_a_changed_data_set_unless_allowed(tmp_path: Path) -> None:
    data, run = tmp_path / "data", tmp_path / "run"
    _folder(data, 10)
    cli = CliRunner()
    trained = cli.invoke(main, ["train", "--data", str(data), "--size", "8", "--epochs", "1", "--out", str(run)])
    assert trained.exit_code == 0, trained.stderr
    before = {f.name: f.read_bytes() for f in run.iterdir() if f.is_file()}
    for change in ("added", "removed"):
        if change == "added":
            Image.fromarray(np.zeros((8, 8), np.uint8)).save(data / "c0" / "new.png")
        else:
            (data / "c0" / "new.png").unlink()
            (data / "c1" / "0.png").unlink()
        refused = cli.invoke(main, ["resume", str(run), "--epochs", "1"])
        assert refused.exit_code == 1 and refused.stderr.count("\n") == 1, refused.stderr
        assert "the data changed since these splits were made" in refused.stderr
        assert "test images could move into training" in refused.stderr
        assert {f.name: f.read_bytes() for f in run.iterdir() if f.is_file()} == before  # nothing touched
    allowed = cli.invoke(main, ["resume", str(run), "--epochs", "1", "--allow-changed-data"])
    assert allowed.exit_code == 0, allowed.stderr
    assert "the data changed" in allowed.stderr and "completed after 2 epochs" in allowed.stdout
