"""`nnsee train --out`: nothing is deleted before everything is checked, only nnsee's own files are ever deleted,
and a folder of the user's is refused whatever the flags."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from tiny import banded_npz

from nnsee.cli import main


@pytest.fixture
def npz_spec(tmp_path: Path) -> str:
    path = tmp_path / "tiny.npz"
    banded_npz(path, 20, 6, width=1, noise=0.2, signal=0.8)
    return str(path)


def _train(spec: str, out: Path, *extra: str) -> tuple[int, str]:
    args = ["train", "--data", spec, "--model", "mlp", "--hidden", "4", "--epochs", "2", "--out", str(out), *extra]
    result = CliRunner().invoke(main, args)
    return result.exit_code, result.stderr


def _contents(folder: Path) -> dict[str, bytes | None]:
    return {str(p.relative_to(folder)): p.read_bytes() if p.is_file() else None for p in sorted(folder.rglob("*"))}


@pytest.mark.parametrize(
    "bad",
    [
        ("--data", "digitz"),  # a typo'd data spec
        ("--data", "/nonexistent/folder"),
        ("--device", "bogus"),  # an option found bad only once the data has loaded
        ("--optimizer", "sgd", "--lr", "-1"),
        ("--snapshots", "0,x"),
    ],
)
def test_force_with_a_bad_option_leaves_the_old_run_intact(npz_spec: str, tmp_path: Path, bad: tuple[str, ...]) -> None:
    run = tmp_path / "run"
    assert _train(npz_spec, run, "--snapshots", "0,1,2")[0] == 0
    before = _contents(run)
    assert "snapshots/epoch-0002.safetensors" in before
    args = ["train", "--data", npz_spec, "--model", "mlp", "--hidden", "4", "--epochs", "2", "--out", str(run),
            "--force", *bad]
    result = CliRunner().invoke(main, args)
    assert result.exit_code != 0
    assert "Traceback" not in result.stderr and "rror" in result.stderr.strip().splitlines()[-1], result.stderr
    assert _contents(run) == before


def test_force_replaces_only_the_runs_own_files(npz_spec: str, tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert _train(npz_spec, run, "--snapshots", "0,1,2")[0] == 0
    (run / "notes.txt").write_text("mine")
    (run / "snapshots" / "mine.txt").write_text("mine too")
    (run / "report").mkdir()
    (run / "report" / "keep.html").write_text("<p>mine</p>")
    code, err = _train(npz_spec, run, "--snapshots", "1", "--force")
    assert code == 0, err
    assert (run / "notes.txt").read_text() == "mine"
    assert (run / "snapshots" / "mine.txt").read_text() == "mine too"
    assert (run / "report" / "keep.html").exists()
    assert sorted(p.name for p in (run / "snapshots").iterdir()) == ["epoch-0001.safetensors", "mine.txt"]


@pytest.mark.parametrize("force", [False, True])
@pytest.mark.parametrize(
    "files",
    [
        {"run.json": '{"my": "own json"}', "state.pt": "my own state", "notes.txt": "hello"},
        {"holiday.jpg": "jpeg bytes"},
        {"sub/.tmp-model.safetensors-0a1b2c3d4e5f": "a file of the user's", "model.safetensors": "mine"},
        {"snapshots/my-photos.txt": "mine"},
    ],
)
def test_a_non_empty_folder_that_is_not_a_run_is_refused_whatever_the_flags(
    npz_spec: str, tmp_path: Path, files: dict[str, str], force: bool
) -> None:
    out = tmp_path / "mine"
    for name, text in files.items():
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_text(text)
    before = _contents(out)
    code, err = _train(npz_spec, out, *(["--force"] if force else []))
    assert code == 1
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1
    assert "is not an nnsee run folder and is not empty: choose another --out" in err
    assert _contents(out) == before


@pytest.mark.parametrize("force", [False, True])
def test_a_run_whose_snapshots_folder_is_a_link_is_refused(npz_spec: str, tmp_path: Path, force: bool) -> None:
    run = tmp_path / "run"
    assert _train(npz_spec, run)[0] == 0
    users = tmp_path / "users"
    users.mkdir()
    (users / "photo.jpg").write_text("mine")
    (run / "snapshots").symlink_to(users)
    before = _contents(users)
    code, err = _train(npz_spec, run, "--snapshots", "0,1", *(["--force"] if force else []))
    assert code == 1 and "is not the folder nnsee writes snapshots in" in err
    assert _contents(users) == before


def test_an_empty_folder_is_trained_into(npz_spec: str, tmp_path: Path) -> None:
    out = tmp_path / "empty"
    out.mkdir()
    assert _train(npz_spec, out)[0] == 0
    assert (out / "run.json").is_file()
