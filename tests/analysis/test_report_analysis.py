"""``nnsee report RUN --analysis DIR`` shows the analysis' scores instead of recomputing them, and refuses an
analysis of other weights or other data; the analysis' top-9 is what the dataset view computes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from nnsee.analysis import analyze, load_analysis
from nnsee.analysis.report import scores, top_images
from nnsee.cli import main
from nnsee.data import load_splits
from nnsee.methods.dataset_views.top_images import top_images_per_layer
from nnsee.train import load_run
from nnsee.train.evaluate import predict_logits
from nnsee.train.evaluate import scores as reference_scores


@pytest.fixture(scope="module")
def analyses(cnn_run: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    run = load_run(cnn_run)
    splits = load_splits(run.data_spec)
    root = tmp_path_factory.mktemp("analyses")
    for split in ("test", "train", "val"):
        analyze(run.model, getattr(splits, split), root / split, standardizer=run.standardizer,
                layers=["relu1", "relu2"], batch_size=32)
    return {split: root / split for split in ("test", "train", "val")}


def test_scores_equal_evaluate(cnn_run: Path, analyses: dict[str, Path]) -> None:
    run = load_run(cnn_run)
    test = load_splits(run.data_spec).test
    ref = reference_scores(predict_logits(run.model, test.images, transform=run.standardizer.transform),
                           test.labels, test.class_names)
    got = scores(load_analysis(analyses["test"]))
    for key in ("n", "accuracy", "per_class_accuracy", "confusion_matrix"):
        assert got[key] == ref[key], key
    assert got["loss"] == pytest.approx(ref["loss"], rel=1e-5)


def test_the_report_shows_the_analysis_scores(cnn_run: Path, analyses: dict[str, Path], tmp_path: Path) -> None:
    marked = tmp_path / "marked"
    marked.mkdir()
    for item in analyses["test"].iterdir():
        if item.is_file():
            (marked / item.name).write_bytes(item.read_bytes())
    summary = json.loads((marked / "summary.json").read_text())
    summary["confusion_matrix"][0][0], summary["accuracy"] = 777, 0.4321  # numbers only the analysis holds
    (marked / "summary.json").write_text(json.dumps(summary))
    result = CliRunner().invoke(main, ["report", str(cnn_run), "--out", str(tmp_path / "r"), "--analysis",
                                       str(marked), "--device", "cpu"])
    assert result.exit_code == 0, result.stderr
    page = (tmp_path / "r" / "index.html").read_text()
    assert "43.2%" in page and ">777<" in page


def test_an_analysis_of_other_data_or_weights_is_refused(cnn_run: Path, analyses: dict[str, Path],
                                                          tmp_path: Path) -> None:
    other = CliRunner().invoke(main, ["report", str(cnn_run), "--out", str(tmp_path / "r"), "--analysis",
                                      str(analyses["val"]), "--device", "cpu"])
    assert other.exit_code == 1, other.stderr
    assert "is of neither this run's test split nor its training split (data.labels" in other.stderr, other.stderr
    twice = CliRunner().invoke(main, ["report", str(cnn_run), "--out", str(tmp_path / "r"), "--analysis",
                                      str(analyses["train"]), "--analysis", str(analyses["train"]), "--device", "cpu"])
    assert twice.exit_code == 1 and "two analyses of this run's train split" in twice.stderr, twice.stderr
    run = load_run(cnn_run)
    next(run.model.parameters()).data += 1
    from nnsee.errors import RunError
    from nnsee.report import build_report

    with pytest.raises(RunError, match="made with other weights"):
        build_report(run, tmp_path / "r2", analysis=analyses["test"])
    assert other.stderr.strip().count("\n") == 0 and not (tmp_path / "r").exists()


def test_top_images_equal_the_dataset_view(cnn_run: Path, analyses: dict[str, Path]) -> None:
    run = load_run(cnn_run)
    train = load_splits(run.data_spec).train
    want = top_images_per_layer(run.model, train.images, ["relu1"], k=9, transform=run.standardize)["relu1"]
    got = top_images(load_analysis(analyses["train"]), ["relu1"])["relu1"]
    np.testing.assert_array_equal(got.image_index, want.image_index)
    np.testing.assert_array_equal(got.position, want.position)
    np.testing.assert_allclose(got.values, want.values, rtol=1e-6)
    assert top_images(load_analysis(analyses["train"]), ["conv2"]) is None


def _page(folder: Path) -> str:
    """The report's index page without its build time (the one line that differs between two builds)."""
    return re.sub(r"built in [0-9.]+ ?s", "built in", (folder / "index.html").read_text())


def test_the_report_reads_the_top9_of_a_training_split_analysis(
        cnn_run: Path, analyses: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With both analyses the page equals the page computed from scratch, and the top-9 pass never runs."""
    from nnsee.report import build_report

    build_report(cnn_run, tmp_path / "scratch", layers=["relu1", "relu2"], device="cpu")
    import nnsee.methods.dataset_views.top_images as views

    def no_pass(*args: object, **kwargs: object) -> None:
        raise AssertionError("the top-9 pass ran although the analysis holds it")

    monkeypatch.setattr(views, "top_images_per_layer", no_pass)
    build_report(cnn_run, tmp_path / "read", layers=["relu1", "relu2"], device="cpu",
                 analysis=[analyses["test"], analyses["train"]])
    assert _page(tmp_path / "read") == _page(tmp_path / "scratch")
    files = sorted(p.name for p in (tmp_path / "scratch").iterdir())
    assert files == sorted(p.name for p in (tmp_path / "read").iterdir())
    for name in files:
        if name != "index.html":
            assert (tmp_path / "read" / name).read_bytes() == (tmp_path / "scratch" / name).read_bytes(), name
