"""The report on a streamed data set (read from disk batch by batch) equals the report built in memory, and its
memory does not grow with the set.

The data: an .npz of 2,000 12x12 images of 4 classes written by the test; an MLP (pixel standardization: unit cards,
ablation, why-this-score) and a CNN (image standardization: top-9, projections, Grad-CAM, occlusion, evolution,
randomization check), each trained 2 epochs with snapshots; and a CNN on a folder of 120 JPEG photos read as
3x16x16 (the guarded decoder, resized and kept RGB as each batch is read). The pages are compared as text (every
number and every data: URI image) but for the build time, and every file written beside them byte for byte.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from limited_child import call, run_limited
from photos import photo_folder

from nnsee.cli import main
from nnsee.data import load_data
from nnsee.data.lazy import LazyImages
from nnsee.data.spec import load_splits
from nnsee.methods.hidden_units import unit_cards
from nnsee.models import build_model
from nnsee.report import build_report
from nnsee.train import TrainConfig, evaluate, fit
from nnsee.train.run import Run, load_run
from tests.report.streamed_report import write_banded_npz

N, SHAPE = 2000, (1, 12, 12)
DECODED = N * int(np.prod(SHAPE)) * 4  # 1,152,000 bytes as float32
MODELS = {"mlp": ({"hidden": [16]}, "pixel"), "cnn": ({"channels": [4, 6], "kernel": 3}, "image")}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("streamed")
    write_banded_npz(root / "set.npz", N, SHAPE)
    splits = load_data(str(root / "set.npz"), seed=0, stream=False)
    out = {}
    for name, (options, standardize) in MODELS.items():
        torch.manual_seed(0)
        model = build_model(name, splits.shape, splits.train.n_classes, **options)
        config = TrainConfig(epochs=2, batch_size=64, lr=0.01, snapshots=[0, 1, 2], standardize=standardize)
        fit(model, splits, config, root / name, progress=False)
        out[name] = root / name
    # a folder of JPEG photos, 3 classes, decoded and brought to 3x16x16 as they are read
    photos = load_data(str(photo_folder(root / "photos", 40, 24, fmt="jpg")), size=16, grayscale=False, seed=0,
                       stream=False)
    torch.manual_seed(0)
    model = build_model("cnn", photos.shape, photos.train.n_classes, channels=[4, 6], kernel=3)
    fit(model, photos, TrainConfig(epochs=2, batch_size=16, lr=0.01, snapshots=[0, 1, 2]), root / "photo-cnn",
        progress=False)
    out["photo-cnn"] = root / "photo-cnn"
    return out


def _pages(folder: Path) -> dict[str, bytes]:
    """Every file the report wrote; the pages without their build time."""
    files = {p.name: p.read_bytes() for p in sorted(folder.iterdir())}
    for name in files:
        if name.endswith(".html"):
            files[name] = re.sub(rb"built in [0-9.]+ s", b"built in - s", files[name])
    return files


def _without_test_scores(run: Run) -> Run:
    """The run with its stored test scores dropped, so the page computes accuracy and confusion from the data."""
    return replace(run, meta={**run.meta, "metrics": {k: v for k, v in run.metrics.items() if k != "test"}})


def _never_whole(self: LazyImages, dtype: object = None, copy: object = None) -> np.ndarray:
    raise AssertionError(f"a report section decoded all {len(self)} images of a streamed set at once")


@pytest.mark.parametrize("name", [*MODELS, "photo-cnn"])
def test_a_report_on_a_streamed_set_equals_the_report_in_memory(runs: dict[str, Path], tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """--stream: the same pages and files as --no-stream (accuracy and confusion cells recomputed from the test
    split, unit cards' top images, top-9 crops and projections, maps ...), and no section ever decodes a whole
    split (LazyImages.__array__ fails the test)."""
    run = _without_test_scores(load_run(runs[name]))
    build_report(run, tmp_path / "memory", stream=False)
    monkeypatch.setattr(LazyImages, "__array__", _never_whole)
    assert load_splits(run.data_spec, stream=True).train.streamed
    build_report(run, tmp_path / "streamed", stream=True)
    memory, streamed = _pages(tmp_path / "memory"), _pages(tmp_path / "streamed")
    page = memory["index.html"].decode()
    scores = evaluate(run.model, load_splits(run.data_spec, stream=False).test, run.standardizer)
    assert f"{100 * scores['accuracy']:.1f}% on {scores['n']} images" in page  # as nnsee evaluate scores it
    assert "Confusion matrix (test" in page
    assert ('id="unit-' in page and "top 9 training images of unit" in page) if name == "mlp" else (
        "top 9 images of map" in page and "projections of map" in page and "Grad-CAM" in page)
    assert memory.keys() == streamed.keys()
    for file in memory:
        assert streamed[file] == memory[file], f"{file} differs between the streamed and the in-memory report"


def test_unit_cards_of_a_streamed_set_equal_those_of_the_standardized_arrays(runs: dict[str, Path],
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """unit_cards(streamed train and validation images, transform=the run's standardization) equals unit_cards of
    the whole standardized arrays (how the report called it before): order, top images and their activations,
    ablation, importance."""
    run = load_run(runs["mlp"])
    memory = load_splits(run.data_spec, stream=False)
    expected = unit_cards(run.model, run.standardize(memory.train.images), run.standardize(memory.val.images),
                          memory.val.labels, run.class_names, sort_by="ablation")
    monkeypatch.setattr(LazyImages, "__array__", _never_whole)
    streamed = load_splits(run.data_spec, stream=True)
    got = unit_cards(run.model, streamed.train.images, streamed.val.images, streamed.val.labels, run.class_names,
                     sort_by="ablation", transform=run.standardize)
    assert [c.unit for c in got] == [c.unit for c in expected]
    for a, b in zip(got, expected, strict=True):
        np.testing.assert_array_equal(a.top_images, b.top_images)
        np.testing.assert_array_equal(a.top_activations, b.top_activations)
        np.testing.assert_array_equal(a.ablation, b.ablation)
        assert a.importance == b.importance


def test_report_streams_on_its_own_under_max_memory(runs: dict[str, Path], tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """nnsee report RUN --max-memory 600K (under the set's 1,152,000 decoded bytes): the set is streamed without
    --stream and the page equals --no-stream's."""
    run = runs["mlp"]
    assert load_splits(load_run(run).data_spec, max_memory=600 << 10).train.streamed
    assert not load_splits(load_run(run).data_spec).train.streamed  # the default budget holds it
    done = CliRunner().invoke(main, ["report", str(run), "--no-stream", "--out", str(tmp_path / "memory")])
    assert done.exit_code == 0, done.output
    monkeypatch.setattr(LazyImages, "__array__", _never_whole)
    done = CliRunner().invoke(main, ["report", str(run), "--max-memory", "600K", "--out", str(tmp_path / "auto")])
    assert done.exit_code == 0, done.output
    assert _pages(tmp_path / "auto") == _pages(tmp_path / "memory")


#: Per model: (few, many) images of 1x64x64 and the budget each is loaded under (streamed either way).
SIZES = {"mlp": ((10_000, 64 << 20), (100_000, 256 << 20)), "cnn": ((10_000, 32 << 20), (40_000, 256 << 20))}


@pytest.mark.parametrize("name", list(MODELS))
def test_the_report_of_a_streamed_set_does_not_grow_with_the_set(tmp_path: Path, name: str) -> None:
    """A child under RLIMIT_AS 1.5 GiB builds the report of a large .npz of 1x64x64 images, streamed on its own
    under --max-memory 256M, and of a tenth of it. MLP: 100,000 images (391 MiB as uint8, 1.53 GiB as float32: no
    float32 copy fits the limit) vs 10,000, measured VmHWM 579 vs 561 MiB. CNN (top-9, projections, evolution over
    snapshots, Grad-CAM, occlusion, randomization check, the representation map, invariance): 40,000 images (625 MiB
    as float32) vs 10,000. The smaller set is 10,000, not 4,000: the forward chunks the tuner picks grow with the
    split up to their cap (4,000 images leave 400 test images, under it: 533 vs 633 MiB once the representation map
    and invariance sections came). Bound: 60 MiB of growth, where the extra images take 1.4 GB (MLP) and 470 MB
    (CNN) as float32."""
    options, standardize = MODELS[name]
    write_banded_npz(tmp_path / "small.npz", 400, (1, 64, 64))
    splits = load_data(str(tmp_path / "small.npz"), seed=0)
    torch.manual_seed(0)
    model = build_model(name, splits.shape, 4, **options)
    fit(model, splits, TrainConfig(epochs=1, batch_size=64, lr=0.01, snapshots=[0, 1], standardize=standardize),
        tmp_path / "run", progress=False)
    peaks = {}
    for n, budget in SIZES[name]:
        npz = tmp_path / "set.npz"
        write_banded_npz(npz, n, (1, 64, 64))
        (outcome,), peak_kb = run_limited([call("tests.report.streamed_report:report_under_budget",
                                                str(tmp_path / "run"), str(npz), str(tmp_path / f"report-{n}"),
                                                budget)], limit=3 << 29, timeout=600)
        assert outcome[1] == "DONE", outcome
        assert "confusion" in (tmp_path / f"report-{n}" / "index.html").read_text().lower()
        peaks[n] = peak_kb / 1024
        npz.unlink()
    few, many = (n for n, _ in SIZES[name])
    assert peaks[many] - peaks[few] < 60, peaks
