"""Reports against a hostile or changed file system: a report folder, or a file in it, that is a symbolic link is
refused before anything is written (nothing written through it); a data set that moved after training is named, with
what to do, and can be given by its new place."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from nnsee.data import load_data
from nnsee.errors import DataError, RunError
from nnsee.models import build_model
from nnsee.report import build_report
from nnsee.train import TrainConfig, fit


@pytest.fixture
def run_copy(softmax_run: Path, tmp_path: Path) -> Path:
    run = tmp_path / "run"
    shutil.copytree(softmax_run, run, ignore=shutil.ignore_patterns("report"))
    return run


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("target", ["folder", "dangling"])
def test_a_report_folder_that_is_a_link_is_refused(run_copy: Path, tmp_path: Path, target: str) -> None:
    """RUN/report -> a folder of the user's (with their own index.html), or -> nowhere: refused in one line, the
    user's folder byte for byte as it was, nothing created where a dangling link points."""
    mine = tmp_path / "my-site"
    if target == "folder":
        mine.mkdir()
        (mine / "index.html").write_text("<h1>my own page</h1>")
        (mine / "templates.png").write_bytes(b"my picture")
    before = _tree(mine) if mine.exists() else None
    (run_copy / "report").symlink_to(mine)
    with pytest.raises(RunError, match=r"report is a symbolic link \(to .*my-site\): nnsee writes a report only into "
                                       r"a real folder") as caught:
        build_report(run_copy)
    assert "\n" not in str(caught.value)
    assert (_tree(mine) if mine.exists() else None) == before
    out = tmp_path / "elsewhere"
    out.symlink_to(mine)
    with pytest.raises(RunError, match="elsewhere is a symbolic link"):
        build_report(run_copy, out)
    assert (_tree(mine) if mine.exists() else None) == before


@pytest.mark.parametrize("name", ["index.html", "templates.png", "evolution.gif"])
def test_a_file_in_the_report_folder_that_is_a_link_is_refused(run_copy: Path, tmp_path: Path, name: str) -> None:
    """A link in place of a page or figure: refused before any file is written (the link and its target kept)."""
    mine = tmp_path / "precious.txt"
    mine.write_text("the user's own file")
    report = run_copy / "report"
    report.mkdir()
    (report / name).symlink_to(mine)
    with pytest.raises(RunError, match=rf"report/{name.replace('.', '[.]')} is a symbolic link"):
        build_report(run_copy)
    assert mine.read_text() == "the user's own file"
    assert [p.name for p in report.iterdir()] == [name] and (report / name).is_symlink()


def test_a_report_folder_that_is_a_file_is_one_line(run_copy: Path) -> None:
    (run_copy / "report").write_text("not a folder")
    with pytest.raises(RunError, match="report is a file, not a folder"):
        build_report(run_copy)
    assert (run_copy / "report").read_text() == "not a folder"


def _tiny_run(npz: Path, out: Path) -> Path:
    splits = load_data(str(npz), seed=0)
    torch.manual_seed(0)
    model = build_model("softmax", splits.shape, splits.train.n_classes)
    fit(model, splits, TrainConfig(epochs=1, batch_size=16, lr=0.01), out, progress=False)
    return out


def _npz(path: Path, n: int, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    np.savez(path, x=rng.uniform(0, 1, (n, 4, 4)).astype(np.float32), y=np.arange(n) % 3)
    return path


def test_a_moved_data_set_is_named_with_what_to_do(tmp_path: Path) -> None:
    """The run's npz renamed after training: the error names it, says it is missing, and how to go on; given its
    new place, the report builds; a different data set (other counts) or another kind there is refused."""
    npz = _npz(tmp_path / "set.npz", 30)
    run = _tiny_run(npz, tmp_path / "run")
    moved = tmp_path / "moved.npz"
    npz.rename(moved)
    with pytest.raises(DataError) as caught:
        build_report(run)
    message = str(caught.value)
    assert f"the data set the run was trained on, {npz}, is missing (moved, renamed or deleted)" in message
    assert f"move it back to {npz}" in message and "--data NEW_PATH" in message and "\n" not in message
    assert not (run / "report").exists()
    index = build_report(run, data=moved)
    assert "What <span class=\"math\">\u2068run\u2069</span> learned" in index.read_text(encoding="utf-8")
    assert json.loads((run / "run.json").read_text(encoding="utf-8"))["data"]["spec"] == str(npz)  # run untouched
    with pytest.raises(DataError, match=r"counts were .* now .*the splits would differ"):
        build_report(run, data=_npz(tmp_path / "other.npz", 45))
    folder = tmp_path / "images"
    folder.mkdir()
    with pytest.raises(DataError, match=r"the run was trained on an \.npz file, this is a folder of class subfolders"):
        build_report(run, data=folder)


def test_a_moved_image_folder_is_named_too(tmp_path: Path) -> None:
    from PIL import Image

    root = tmp_path / "photos"
    for k, c in enumerate("abc"):
        for i in range(6):
            (root / c).mkdir(parents=True, exist_ok=True)
            Image.new("L", (5, 5), 40 * k + i).save(root / c / f"{i}.png")
    run = _tiny_run(root, tmp_path / "run")
    root.rename(tmp_path / "photos-2025")
    with pytest.raises(DataError, match=rf"trained on, {root}, is missing"):
        build_report(run)
    assert build_report(run, data=tmp_path / "photos-2025").exists()


def test_a_built_in_data_set_cannot_be_given_a_new_place(run_copy: Path, tmp_path: Path) -> None:
    meta = json.loads((run_copy / "run.json").read_text(encoding="utf-8"))
    meta["data"]["kind"] = "digits"
    meta["data"]["spec"] = "digits"
    (run_copy / "run.json").write_text(json.dumps(meta), encoding="utf-8")
    with pytest.raises(DataError, match="not read from a path: it cannot be moved"):
        build_report(run_copy, data=tmp_path)


@pytest.mark.filterwarnings("ignore:batch size")
def test_study_pages_refuse_links_too_and_isolate_class_names(tmp_path: Path) -> None:
    """The study pages write through the same check: a link as their folder or in place of their page is refused
    with nothing written; the standardization page's class names stand between FSI and PDI, controls removed."""
    from tiny import make_splits

    from nnsee.report.standardization_study import build_standardization_report
    from nnsee.report.study import build_study_report
    from nnsee.studies import overfit_study, standardization_study

    study = standardization_study(make_splits(n_per_class=6, shape=(1, 4, 4)), epochs=1, n_examples=2)
    study.class_names = ["left\u202eright", "b", "c"]
    mine = tmp_path / "mine"
    mine.mkdir()
    (tmp_path / "link").symlink_to(mine)
    with pytest.raises(RunError, match="link is a symbolic link"):
        build_standardization_report(study, tmp_path / "link")
    page = tmp_path / "page"
    page.mkdir()
    (page / "index.html").symlink_to(mine / "own.html")
    with pytest.raises(RunError, match=r"index\.html is a symbolic link"):
        build_standardization_report(study, page)
    assert list(mine.iterdir()) == []
    html = build_standardization_report(study, tmp_path / "real").read_text(encoding="utf-8")
    assert "\u2068leftright\u2069" in html and "\u202e" not in html
    overfit = overfit_study(make_splits(n_per_class=6, shape=(1, 4, 4)), per_class=(3,), l2_values=(0.0,), hidden=8,
                            epochs=2, lbfgs_iterations=2)
    with pytest.raises(RunError, match="link is a symbolic link"):
        build_study_report(overfit, tmp_path / "link")
    assert list(mine.iterdir()) == []


def test_report_cli_takes_the_moved_data_set_with_data(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from nnsee.cli import main

    npz = _npz(tmp_path / "set.npz", 30)
    run = _tiny_run(npz, tmp_path / "run")
    npz.rename(tmp_path / "moved.npz")
    refused = CliRunner().invoke(main, ["report", str(run)])
    assert refused.exit_code == 1 and "--data NEW_PATH" in refused.output and "Traceback" not in refused.output
    done = CliRunner().invoke(main, ["report", str(run), "--data", str(tmp_path / "moved.npz")])
    assert done.exit_code == 0, done.output
    assert (run / "report" / "index.html").exists()


@pytest.mark.parametrize("theirs", [{"index.html": "<h1>my own page</h1>"}, {"notes.txt": "mine"},
                                    {"index.html": "<title>nnsee is great</title>", "a.png": "x"}],
                         ids=["their-index", "their-notes", "look-alike-title"])
def test_report_refuses_a_folder_of_the_users(run_copy: Path, tmp_path: Path, theirs: dict[str, str]) -> None:
    """--out a folder holding the user's own files: refused before any work, every byte of theirs kept."""
    out = tmp_path / "site"
    out.mkdir()
    for name, text in theirs.items():
        (out / name).write_text(text)
    before = _tree(out)
    with pytest.raises(RunError, match=r"holds files that are not an nnsee report .*give --out another folder"):
        build_report(run_copy, out)
    assert _tree(out) == before


def test_report_rewrites_its_own_report_and_an_interrupted_one(run_copy: Path) -> None:
    first = build_report(run_copy)
    (first.parent / "index.html").unlink()  # an interrupted report: its figures, no page yet
    assert build_report(run_copy) == first
    assert build_report(run_copy).exists()  # over a report it wrote


def test_study_refuses_a_folder_of_the_users_before_training(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from nnsee.cli import main

    out = tmp_path / "site"
    out.mkdir()
    (out / "index.html").write_text("<h1>my own page</h1>")
    for command in (["study", "overfit"], ["study", "standardization"]):
        result = CliRunner().invoke(main, [*command, "--data", "digits", "--out", str(out)])
        assert result.exit_code == 1 and "holds files that are not an nnsee report" in result.output
        assert sorted(p.name for p in out.iterdir()) == ["index.html"]  # no runs/ trained into it
    assert (out / "index.html").read_text() == "<h1>my own page</h1>"
