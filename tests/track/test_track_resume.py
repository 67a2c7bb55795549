"""nnsee.track(..., resume=): a loop restarted from its own checkpoint continues the run it was tracking."""

from __future__ import annotations

import pytest
import torch

import nnsee
from nnsee.errors import RunError
from nnsee.train import load_run
from tests.track.track_model import CLASSES, SHAPE, tiny_cnn, train_step


def _track(out, model, **kw):
    kw = {"class_names": CLASSES, "input_shape": SHAPE, "normalize": "none", **kw}
    return nnsee.track(model, out=out, **kw)


def _loop(tracker, model, epochs) -> dict[int, dict[str, torch.Tensor]]:
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    states = {}
    for epoch in epochs:
        tracker.epoch(epoch, train_loss=float(train_step(model, optimizer, epoch)), lr=0.1)
        states[epoch] = {k: v.clone() for k, v in model.state_dict().items()}
    return states


def test_resume_after_a_crash_continues_the_history(tmp_path) -> None:
    model = tiny_cnn()
    first = _loop(_track(tmp_path / "run", model, snapshots=[0, 2, 4]), model, [1, 2, 3])  # no close: a crash
    with open(tmp_path / "run" / "history.jsonl", "ab") as log:
        log.write(b'{"epoch":4,"train_lo')  # the crash cut epoch 4's line
    restarted = tiny_cnn(7)
    restarted.load_state_dict(first[3])  # the loop's own checkpoint of epoch 3
    tracker = _track(tmp_path / "run", restarted, snapshots=[0, 2, 4], resume=True,
                     class_names=["ignored"] * 10)
    assert tracker.last_epoch == 3
    later = _loop(tracker, restarted, [4, 5])
    run = tracker.close()
    assert run.history["epoch"] == [1, 2, 3, 4, 5] and run.class_names == CLASSES
    assert run.snapshot_epochs == [0, 2, 4]
    assert all(torch.equal(v, later[4][k]) for k, v in run.snapshot_state(4).items())
    assert all(torch.equal(v, first[2][k]) for k, v in run.snapshot_state(2).items())
    assert load_run(tmp_path / "run", model=tiny_cnn()).history == run.history


def test_resume_a_closed_run_and_close_again(tmp_path) -> None:
    model = tiny_cnn()
    with _track(tmp_path / "run", model, snapshots=[]) as tracker:
        _loop(tracker, model, [1, 2])
    with _track(tmp_path / "run", model, snapshots=[], resume=True) as tracker:
        _loop(tracker, model, [3])
    history = load_run(tmp_path / "run", model=tiny_cnn()).history
    assert history["epoch"] == [1, 2, 3] and len(history["train_loss"]) == 3


def test_resume_from_an_older_checkpoint_drops_the_later_epochs(tmp_path) -> None:
    model = tiny_cnn()
    states = _loop(_track(tmp_path / "run", model, snapshots=[0, 1, 2, 3, 4]), model, [1, 2, 3, 4])
    older = tiny_cnn(3)
    older.load_state_dict(states[2])
    tracker = _track(tmp_path / "run", older, snapshots=[0, 1, 2, 3, 4], resume=2)
    run = load_run(tmp_path / "run", model=tiny_cnn())
    assert run.history["epoch"] == [1, 2] and run.epoch == 2 and run.snapshot_epochs == [0, 1, 2]
    assert all(torch.equal(v, states[2][k]) for k, v in run.model.state_dict().items())
    again = _loop(tracker, older, [3])
    run = tracker.close()
    assert run.history["epoch"] == [1, 2, 3] and run.snapshot_epochs == [0, 1, 2, 3]
    assert all(torch.equal(v, again[3][k]) for k, v in run.snapshot_state(3).items())


@pytest.mark.parametrize("case, said", [
    ("new folder", "holds no run to resume"),
    ("other model", "differ from those of the run"),
    ("past the last", "resume=9: "),
    ("not an epoch", "resume takes True or the epoch"),
])
def test_resume_refusals(tmp_path, case, said) -> None:
    model = tiny_cnn()
    if case != "new folder":
        _loop(_track(tmp_path / "run", model, snapshots=[]), model, [1, 2])
    other = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
    resume = {"past the last": 9, "not an epoch": "2"}.get(case, True)
    with pytest.raises(RunError) as exc:
        _track(tmp_path / "run", other if case == "other model" else model, resume=resume)
    assert said in str(exc.value) and "\n" not in str(exc.value)
    if case != "new folder":
        assert load_run(tmp_path / "run", model=tiny_cnn()).history["epoch"] == [1, 2]  # untouched


def test_a_run_nnsee_trained_is_not_resumed_by_track(tmp_path) -> None:
    from nnsee.data import load_data
    from nnsee.models import build_model
    from nnsee.train import TrainConfig, fit

    splits = load_data("digits")
    model = build_model("softmax", splits.shape, splits.train.n_classes)
    fit(model, splits, TrainConfig(optimizer="adam", epochs=1), out=tmp_path / "run", progress=False)
    with pytest.raises(RunError, match="holds a run nnsee trained, not one tracked from your loop"):
        nnsee.track(model, out=tmp_path / "run", resume=True)
