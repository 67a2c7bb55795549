"""The overfitting study: its structure on tiny data, and the seed's claims on the real digits (slow)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from tiny import make_splits

from nnsee.errors import DataError
from nnsee.methods.noisiness import noisiness
from nnsee.studies import OverfitStudy, overfit_study, stratified_subset
from nnsee.train import load_run

TINY = {"per_class": (3, 6), "l2_values": (0.0, 0.1), "hidden": 8, "epochs": 3, "lbfgs_iterations": 2}


@pytest.fixture(scope="module")
def tiny_study(tmp_path_factory: pytest.TempPathFactory) -> tuple[OverfitStudy, Path]:
    out = tmp_path_factory.mktemp("study")
    return overfit_study(make_splits(n_per_class=10, shape=(1, 4, 4)), out=out, **TINY), out


def test_one_run_per_size_and_l2_with_its_curve_weights_and_scores(tiny_study: tuple[OverfitStudy, Path]) -> None:
    study, out = tiny_study
    assert [(r.per_class, r.l2) for r in study.runs] == [(3, 0.0), (3, 0.1), (6, 0.0), (6, 0.1)]
    for r in study.runs:
        assert r.n_train == 3 * r.per_class
        assert r.history["epoch"] == [1, 2, 3]
        assert set(r.history) >= {"train_loss", "train_accuracy", "val_loss", "val_accuracy"}
        assert r.incoming_weights.shape == (8, 1, 4, 4) and r.incoming_weights.dtype == np.float32
        assert r.gap == pytest.approx(r.train_accuracy - r.val_accuracy)
        assert r.noisiness == pytest.approx(noisiness(r.incoming_weights)) and r.noisiness["n"] == 8
        assert 1 <= r.min_val_loss_epoch <= 3
        assert r.run_dir == out / r.name and (r.run_dir / "run.json").is_file()
        assert not (r.run_dir / "state.safetensors").exists()  # study runs are written once, without resume state
        run = load_run(r.run_dir)
        assert run.config["l2"] == r.l2 and run.history["val_loss"] == r.history["val_loss"]
        assert run.metrics["val"]["accuracy"] == r.val_accuracy
        np.testing.assert_array_equal(run.model.fc1.weight.detach().numpy().reshape(8, 1, 4, 4), r.incoming_weights)
    assert study.run(6, 0.1) is study.runs[3]
    with pytest.raises(KeyError, match="no run"):
        study.run(5, 0.0)
    # L2 shrinks the weights.
    assert np.abs(study.run(6, 0.1).incoming_weights).sum() < np.abs(study.run(6, 0.0).incoming_weights).sum()


def test_summary_and_json_are_json_safe(tiny_study: tuple[OverfitStudy, Path]) -> None:
    study, out = tiny_study
    rows = study.summary()
    assert json.loads(json.dumps(rows, allow_nan=False)) == rows
    assert rows[0]["name"] == "3-l2-0" and rows[1]["name"] == "3-l2-0.1"
    assert {"per_class", "l2", "train_accuracy", "val_accuracy", "test_accuracy", "gap", "min_val_loss_epoch",
            "noisiness_high_frequency_share_mean", "noisiness_tv_ratio_mean", "run_dir"} <= set(rows[0])
    saved = json.loads((out / "study.json").read_text())
    assert saved == json.loads(study.to_json())
    assert saved["settings"]["per_class"] == [3, 6] and saved["class_names"] == study.class_names
    assert saved["runs"][2]["history"]["val_loss"] == study.runs[2].history["val_loss"]


def test_the_study_is_deterministic(tiny_study: tuple[OverfitStudy, Path]) -> None:
    study, _ = tiny_study
    again = overfit_study(make_splits(n_per_class=10, shape=(1, 4, 4)), **TINY)
    for a, b in zip(study.runs, again.runs, strict=True):
        np.testing.assert_array_equal(a.incoming_weights, b.incoming_weights)
        assert a.history["val_loss"] == b.history["val_loss"] and a.noisiness == b.noisiness
        assert b.run_dir is None


def test_every_run_starts_from_the_same_weights() -> None:
    study = overfit_study(make_splits(n_per_class=10), per_class=(3, 6), l2_values=(0.0, 1.0), hidden=8,
                          epochs=0)
    first = study.runs[0].incoming_weights
    assert all(np.array_equal(r.incoming_weights, first) for r in study.runs)


def test_stratified_subsets_are_balanced_seeded_and_nested() -> None:
    train = make_splits(n_per_class=20, n_classes=4).train
    small, large = stratified_subset(train, 5, seed=7), stratified_subset(train, 12, seed=7)
    assert np.bincount(train.labels[small], minlength=4).tolist() == [5, 5, 5, 5]
    assert np.bincount(train.labels[large], minlength=4).tolist() == [12] * 4
    assert set(small) <= set(large) and len(set(large)) == 48
    assert np.array_equal(small, stratified_subset(train, 5, seed=7))
    assert not np.array_equal(small, stratified_subset(train, 5, seed=8))
    with pytest.raises(DataError, match="class 'class 0' has only 20"):
        stratified_subset(train, 21)


@pytest.mark.slow
def test_on_digits_no_l2_overfits_and_its_weights_are_noisier(tmp_path: Path) -> None:
    """The seed's claims, on the built-in digits with the default settings (about a minute on 2 cores)."""
    from nnsee.data import load_data

    study = overfit_study(load_data("digits"), per_class=(40,))
    none, strongest = study.run(40, 0.0), study.runs[-1]
    assert strongest.l2 == max(r.l2 for r in study.runs) > 0
    # Heavy optimization without L2 memorizes the 400 training images ...
    assert none.train_accuracy >= 0.99
    assert none.history["train_loss"][-1] < 1e-3
    # ... while the validation loss turns away: its minimum comes early and it ends far above it.
    val_loss = none.history["val_loss"]
    assert none.min_val_loss_epoch < len(val_loss)
    assert val_loss[-1] > 1.5 * min(val_loss)
    assert none.gap > strongest.gap
    assert all(math.isfinite(r.val_accuracy) for r in study.runs)
    # Without L2 the first-layer weights are noisier, by both measures.
    for key in ("high_frequency_share_mean", "tv_ratio_mean", "high_frequency_share_median"):
        assert none.noisiness[key] > strongest.noisiness[key] + 0.05, key


def test_without_validation_images_the_rows_stay_json_safe() -> None:
    data = make_splits(n_per_class=10)
    data.val = data.val.subset(np.array([], dtype=np.int64))
    study = overfit_study(data, per_class=(2,), l2_values=(0.0,), hidden=4, epochs=2)
    row = study.summary()[0]
    assert row["val_accuracy"] is None and row["gap"] is None and row["min_val_loss_epoch"] is None
    json.dumps(study.to_dict(), allow_nan=False)
