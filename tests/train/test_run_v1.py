"""A run folder in run format 1 (written by commit 9005b49, see fixtures/make_run_v1.py) loads, evaluates, resumes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch
from tiny import make_splits

from nnsee.models import build_model
from nnsee.train import TrainConfig, evaluate, fit, load_run, resume

FIXTURE = Path(__file__).parent / "fixtures" / "run-v1"
CONFIG = {"optimizer": "adam", "batch_size": 4, "lr": 0.05, "snapshots": [0, 2]}


def test_fixture_is_format_1_with_a_pickled_state() -> None:
    assert json.loads((FIXTURE / "run.json").read_text())["nnsee_format_version"] == 1
    assert (FIXTURE / "state.pt").read_bytes()[:2] == b"PK" and not (FIXTURE / "state.safetensors").exists()


def test_version_1_run_loads_and_evaluates() -> None:
    splits = make_splits(n_per_class=4)
    run = load_run(FIXTURE)
    assert run.epoch == 2 and run.class_names == splits.class_names and run.meta["status"] == "completed"
    scores = evaluate(run.model, splits.test, run.standardizer)
    assert scores["accuracy"] == run.metrics["test"]["accuracy"]
    assert run.snapshot_epochs == [0, 2]
    for key, value in run.snapshot_state(2).items():
        assert torch.equal(value, run.model.state_dict()[key])
    state = run.state()
    assert state["epoch"] == 2 and state["optimizer"]["param_groups"][0]["betas"] == (0.9, 0.999)


def test_version_1_run_resumes_bitwise_and_is_saved_as_format_2(tmp_path: Path) -> None:
    path = tmp_path / "run"
    shutil.copytree(FIXTURE, path)
    splits = make_splits(n_per_class=4)
    resumed = resume(path, epochs=2, data=splits, progress=False)
    torch.manual_seed(0)
    whole = fit(build_model("softmax", splits.shape, 3), splits, TrainConfig(epochs=4, **CONFIG), progress=False)
    assert resumed.epoch == 4 and resumed.history["train_loss"] == whole.history["train_loss"]
    for key, value in whole.model.state_dict().items():
        assert torch.equal(resumed.model.state_dict()[key], value)
    assert json.loads((path / "run.json").read_text())["nnsee_format_version"] == 2
    assert (path / "state.safetensors").exists() and not (path / "state.pt").exists()
    assert load_run(path).state()["epoch"] == 4
