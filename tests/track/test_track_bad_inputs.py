"""nnsee.track's bad inputs, each one line naming what is wrong and what to do; nothing of the user's is touched."""

from __future__ import annotations

import json
import warnings

import pytest
import torch
from torch import nn

import nnsee
from nnsee.errors import NnseeError, RunError, TrainingError
from nnsee.train import load_run
from tests.track.track_model import CLASSES, SHAPE, tiny_cnn


def _track(out, model=None, **kw):
    return nnsee.track(model if model is not None else tiny_cnn(), out=out, class_names=CLASSES, input_shape=SHAPE,
                       normalize="none", snapshots=kw.pop("snapshots", []), **kw)


def _one_line(exc: pytest.ExceptionInfo) -> str:
    text = str(exc.value)
    assert "\n" not in text and isinstance(exc.value, NnseeError)
    return text


def test_a_folder_of_the_users_files_is_refused_and_left_alone(tmp_path) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(RunError) as exc:
        _track(tmp_path / "mine")
    assert "not an nnsee run folder and is not empty" in _one_line(exc)
    assert [p.name for p in (tmp_path / "mine").iterdir()] == ["notes.txt"]
    with pytest.raises(RunError):
        _track(tmp_path / "mine", replace=True)  # replace never removes the user's files
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_an_existing_run_needs_replace(tmp_path) -> None:
    _track(tmp_path / "run").epoch(1, train_loss=1.0)
    with pytest.raises(RunError) as exc:
        _track(tmp_path / "run")
    assert "already holds an nnsee run; pass replace=True" in _one_line(exc)
    tracker = _track(tmp_path / "run", replace=True)
    assert not (tmp_path / "run" / "history.jsonl").exists()  # the old run's log went with it
    tracker.epoch(1, train_loss=2.0)
    assert load_run(tmp_path / "run", model=tiny_cnn()).history["train_loss"] == [2.0]


@pytest.mark.parametrize("epochs, bad", [([1], 1), ([3], 2), ([], 0), ([], -1), ([], True), ([], 1.5),
                                         ([], "2")])
def test_epochs_must_increase_and_be_whole(tmp_path, epochs, bad) -> None:
    tracker = _track(tmp_path / "run")
    for epoch in epochs:
        tracker.epoch(epoch, train_loss=1.0)
    with pytest.raises(TrainingError) as exc:
        tracker.epoch(bad, train_loss=1.0)
    assert "epochs must increase" in _one_line(exc) or "whole number" in str(exc.value)
    assert load_run(tmp_path / "run", model=tiny_cnn()).history.get("epoch", []) == epochs  # nothing recorded


@pytest.mark.parametrize("value, said", [("0.5", "a str"), ([0.5], "a list"), (torch.ones(3), "holds 3 values"),
                                         (True, "a bool")])
def test_a_value_that_is_not_one_number(tmp_path, value, said) -> None:
    tracker = _track(tmp_path / "run")
    with pytest.raises(TrainingError) as exc:
        tracker.epoch(1, train_loss=value)
    assert said in _one_line(exc) and "train_loss" in str(exc.value)
    assert tracker.last_epoch == 0


def test_a_value_given_twice_under_two_names(tmp_path) -> None:
    with pytest.raises(TrainingError) as exc:
        _track(tmp_path / "run").epoch(1, train_acc=0.5, train_accuracy=0.6)
    assert "train_accuracy is given twice" in _one_line(exc)


def test_a_model_whose_weights_changed_shape(tmp_path) -> None:
    model = tiny_cnn()
    tracker = _track(tmp_path / "run", model, snapshots=[0, 1, 2])
    tracker.epoch(1, train_loss=1.0)
    model[5] = nn.Linear(64, 12)  # a new head
    with pytest.raises(TrainingError) as exc:
        tracker.epoch(2, train_loss=0.5)
    text = _one_line(exc)
    assert "'5.weight (10, 64) -> (12, 64)'" in text and "track the changed model into another folder" in text
    model.add_module("extra", nn.Linear(2, 2))
    model[5] = nn.Linear(64, 10)
    with pytest.raises(TrainingError, match=r"new: '6.weight'|new: 'extra.weight'"):
        tracker.epoch(2, train_loss=0.5)
    run = load_run(tmp_path / "run", model=tiny_cnn())  # still epoch 1, loadable
    assert run.history["epoch"] == [1] and run.snapshot_epochs == [0, 1]


def test_a_non_finite_loss_is_recorded_as_missing_and_said_once(tmp_path) -> None:
    tracker = _track(tmp_path / "run")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tracker.epoch(1, train_loss=float("nan"), val_loss=1.0)
        tracker.epoch(2, train_loss=torch.tensor(float("inf")), val_loss=float("-inf"))
        tracker.epoch(3, train_loss=0.5, val_loss=0.25)
    said = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    assert len(said) == 1 and "epoch 1: train_loss is nan (not finite); recorded as missing" in said[0]
    history = load_run(tmp_path / "run", model=tiny_cnn()).history
    assert history["train_loss"] == [None, None, 0.5] and history["val_loss"] == [1.0, None, 0.25]
    text = (tmp_path / "run" / "history.jsonl").read_text()
    assert "NaN" not in text and "Infinity" not in text  # strict JSON
    tracker.close()
    assert json.loads((tmp_path / "run" / "run.json").read_text())["history"]["train_loss"] == [None, None, 0.5]


def test_non_finite_weights_are_refused_and_the_run_keeps_the_last_good_epoch(tmp_path) -> None:
    model = tiny_cnn()
    tracker = _track(tmp_path / "run", model, snapshots=[2])
    tracker.epoch(1, train_loss=1.0)
    good = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        model[0].weight[0, 0, 0, 0] = float("nan")
    with pytest.raises(TrainingError) as exc:
        tracker.epoch(2, train_loss=1e9)
    text = _one_line(exc)
    assert "NaN or Inf values (in '0.weight')" in text and "keeps epoch 1" in text
    run = load_run(tmp_path / "run", model=tiny_cnn())
    assert run.history["epoch"] == [1] and run.snapshot_epochs == []
    assert all(torch.equal(v, good[k]) for k, v in run.model.state_dict().items())
    closed = tracker.close()  # still closes on the last good epoch
    assert closed.history["epoch"] == [1]


def test_a_closed_tracker_refuses_more_epochs(tmp_path) -> None:
    tracker = _track(tmp_path / "run")
    tracker.close()
    with pytest.raises(TrainingError) as exc:
        tracker.epoch(1, train_loss=1.0)
    assert "is closed" in _one_line(exc)


@pytest.mark.parametrize("snapshots", [[-1], ["1"], 5, [1.5]])
def test_bad_snapshot_epochs(tmp_path, snapshots) -> None:
    with pytest.raises(RunError) as exc:
        _track(tmp_path / "run", snapshots=snapshots)
    assert "snapshots must be" in _one_line(exc)
    assert not (tmp_path / "run").exists()


def test_not_a_module(tmp_path) -> None:
    with pytest.raises(RunError) as exc:
        nnsee.track(lambda x: x, out=tmp_path / "run", class_names=CLASSES)
    assert "takes the torch nn.Module being trained" in _one_line(exc)


def test_a_damaged_log(tmp_path) -> None:
    """A last line cut by a kill is left out; a damaged line before it is one line naming the file."""
    tracker = _track(tmp_path / "run")
    for epoch in (1, 2):
        tracker.epoch(epoch, train_loss=1.0 / epoch)
    log = tmp_path / "run" / "history.jsonl"
    lines = log.read_text().splitlines(keepends=True)
    log.write_text("".join(lines) + lines[1][:9])
    assert load_run(tmp_path / "run", model=tiny_cnn()).history["epoch"] == [1, 2]
    log.write_text(lines[0][:9] + "\n" + lines[1])
    with pytest.raises(RunError) as exc:
        load_run(tmp_path / "run", model=tiny_cnn())
    assert "history.jsonl: line 1 is not a JSON row; the run folder is damaged" in _one_line(exc)
    log.unlink()
    log.symlink_to(tmp_path / "elsewhere.txt")
    with pytest.raises(RunError) as exc:
        tracker.epoch(3, train_loss=0.3)
    assert "history.jsonl" in _one_line(exc)
    assert not (tmp_path / "elsewhere.txt").exists()  # nothing written through the link


def test_the_log_never_grows_past_what_is_read_back(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A loop calling epoch() once a step for a million steps would outgrow what a load reads: the call that would
    pass the limit is refused, and the run still loads with every epoch before it."""
    import nnsee.train.run as run_module

    monkeypatch.setattr(run_module, "MAX_RUN_JSON_BYTES", 2_000)
    tracker = _track(tmp_path / "run")
    with pytest.raises(RunError) as exc:
        for epoch in range(1, 1000):
            tracker.epoch(epoch, train_loss=1.0 / epoch)
    assert "the most nnsee reads back, so epoch" in _one_line(exc)
    last = tracker.last_epoch
    assert 10 < last < 50 and f"epoch {last + 1} is not recorded" in str(exc.value)
    assert load_run(tmp_path / "run", model=tiny_cnn()).history["epoch"] == list(range(1, last + 1))
