"""nnsee.track: a plain loop writes a run folder with nnsee's history format, snapshots at the chosen epochs and the
latest weights; the user's model is left as it was; close folds the log into run.json."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import nnsee
from nnsee.train import load_run
from nnsee.train.fit import HISTORY_KEYS
from tests.track.track_model import CLASSES, SHAPE, tiny_cnn, train_step


def _track(tmp_path, model, **kw):
    kw.setdefault("snapshots", [0, 1, 3])
    return nnsee.track(model, out=tmp_path / "run", class_names=CLASSES, input_shape=SHAPE, normalize="none", **kw)


def test_a_plain_loop_writes_history_snapshots_and_weights(tmp_path) -> None:
    model = tiny_cnn()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    tracker = _track(tmp_path, model)
    given, states = [], {0: {k: v.clone() for k, v in model.state_dict().items()}}
    for epoch in range(1, 5):
        loss = train_step(model, optimizer, epoch)
        row = {"train_loss": loss, "val_loss": float(loss) + 0.5, "train_acc": np.float32(0.25 * epoch),
               "val_acc": 0.2 * epoch, "lr": 0.1}
        tracker.epoch(epoch, **row)
        given.append(row)
        states[epoch] = {k: v.clone() for k, v in model.state_dict().items()}
    assert model.training and not model._forward_hooks  # the user's model: still training, no hook

    run = load_run(tmp_path / "run", model=tiny_cnn(1))  # before close: run.json of epoch 0 + the log
    history = run.history
    assert set(HISTORY_KEYS) - {"l2_penalty"} <= set(history) and "lr" in history
    assert history["epoch"] == [1, 2, 3, 4] and run.epoch == 4
    assert history["train_loss"] == pytest.approx([float(r["train_loss"]) for r in given])
    assert history["val_loss"] == pytest.approx([r["val_loss"] for r in given])
    assert history["train_accuracy"] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert history["val_accuracy"] == pytest.approx([0.2, 0.4, 0.6, 0.8])
    assert all(s >= 0 for s in history["seconds"])
    assert run.snapshot_epochs == [0, 1, 3]
    for epoch in (0, 1, 3):
        for key, value in run.snapshot_state(epoch).items():
            assert torch.equal(value, states[epoch][key]), (epoch, key)
    for key, value in run.model.state_dict().items():  # model.safetensors: the last epoch's weights
        assert torch.equal(value, states[4][key]), key

    closed = tracker.close()
    assert not (tmp_path / "run" / "history.jsonl").exists()
    meta = json.loads((tmp_path / "run" / "run.json").read_text())
    assert meta["status"] == "tracked" and meta["epoch"] == 4 and meta["history"]["epoch"] == [1, 2, 3, 4]
    assert meta["history"]["train_loss"] == history["train_loss"]
    assert closed.history == history
    assert load_file(tmp_path / "run" / "model.safetensors")["0.weight"].equal(states[4]["0.weight"])


def test_missing_values_are_none_and_a_new_key_pads_earlier_epochs(tmp_path) -> None:
    model = tiny_cnn()
    tracker = _track(tmp_path, model, snapshots=[])
    tracker.epoch(1, train_loss=1.0)
    tracker.epoch(3, train_loss=0.5, val_loss=0.7, grad_norm=torch.tensor(2.0))
    tracker.epoch(7, val_loss=0.6)
    history = load_run(tmp_path / "run", model=tiny_cnn()).history
    assert history["epoch"] == [1, 3, 7]
    assert history["train_loss"] == [1.0, 0.5, None]
    assert history["val_loss"] == [None, 0.7, 0.6]
    assert history["grad_norm"] == [None, 2.0, None]
    assert "val_accuracy" not in history  # never given: no empty curve
    assert tracker.close().history == history


def test_a_kill_after_close_wrote_run_json_does_not_repeat_epochs(tmp_path) -> None:
    """close writes run.json with the whole history, then removes the log: a log left beside it adds nothing."""
    tracker = _track(tmp_path, tiny_cnn(), snapshots=[])
    for epoch in (1, 2):
        tracker.epoch(epoch, train_loss=float(epoch))
    log = (tmp_path / "run" / "history.jsonl").read_bytes()
    tracker.close()
    (tmp_path / "run" / "history.jsonl").write_bytes(log)
    assert load_run(tmp_path / "run", model=tiny_cnn()).history["epoch"] == [1, 2]


def test_the_context_manager_closes(tmp_path) -> None:
    with _track(tmp_path, tiny_cnn(), snapshots=[]) as tracker:
        tracker.epoch(1, train_loss=0.5)
    assert tracker.closed and json.loads((tmp_path / "run" / "run.json").read_text())["history"]["epoch"] == [1]


def test_snapshots_may_be_any_iterable_of_epochs(tmp_path) -> None:
    tracker = _track(tmp_path, tiny_cnn(), snapshots=(e for e in (0, 2)))  # a generator: read once
    for epoch in (1, 2):
        tracker.epoch(epoch, train_loss=1.0)
    assert tracker.close().snapshot_epochs == [0, 2]


def test_the_copy_nnsee_keeps_is_made_on_the_cpu_without_gradients(tmp_path, monkeypatch) -> None:
    """Parameters and buffers go straight to CPU copies, never through their own __deepcopy__ (which copies on the
    tensor's device: on a GPU the model would be duplicated there first): equal values, their own memory, tied weights
    still tied, requires_grad kept, no gradients; the user's model untouched."""
    from nnsee.train.track import _cpu_copy

    def on_its_device(self, memo):
        raise AssertionError("a parameter or buffer was deep-copied on its own device")

    model = torch.nn.Module()
    model.net, model.tied = tiny_cnn(), torch.nn.Linear(64, 10, bias=False)
    model.tied.weight = model.net[5].weight
    model.net[0].bias.requires_grad_(False)
    model.net(torch.randn(2, *SHAPE)).sum().backward()
    monkeypatch.setattr(torch.Tensor, "__deepcopy__", on_its_device)
    monkeypatch.setattr(torch.nn.Parameter, "__deepcopy__", on_its_device)
    work = _cpu_copy(model)
    monkeypatch.undo()
    assert model.training and model.net[5].weight.grad is not None
    assert not work.training and work.tied.weight is work.net[5].weight
    assert not work.net[0].bias.requires_grad and work.net[0].weight.requires_grad
    for (name, a), b in zip(model.state_dict().items(), work.state_dict().values(), strict=True):
        assert torch.equal(a, b) and a.data_ptr() != b.data_ptr(), name
    assert all(p.grad is None for p in work.parameters())


def test_the_report_overview_says_the_run_was_recorded_with_track(tmp_path) -> None:
    """A tracked run is not 'adopted' in the overview: it says the loop and the epoch count recorded."""
    from nnsee.report.sections.overview import _training

    model = tiny_cnn()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with _track(tmp_path, model) as tracker:
        for epoch in (1, 2, 3):
            tracker.epoch(epoch, train_loss=train_step(model, optimizer, epoch))
    run = load_run(tmp_path / "run", model=tiny_cnn(1))
    text = _training(run.meta, run.meta.get("config") or {}, run.epoch)
    assert text.startswith("trained in your own loop, recorded with nnsee.track (3 epochs")
    adopted = nnsee.adopt(tiny_cnn(1), out=tmp_path / "adopted", class_names=CLASSES, input_shape=SHAPE,
                          normalize="none")
    assert _training(adopted.meta, {}, adopted.epoch).startswith("trained elsewhere, adopted with nnsee adopt")
