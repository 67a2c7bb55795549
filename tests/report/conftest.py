"""Small real runs (trained here in seconds) with hostile class names, shared by the report tests."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tiny import HOSTILE_NAMES as HOSTILE
from tiny import banded_npz

from nnsee.data import load_data
from nnsee.models import build_model
from nnsee.train import TrainConfig, fit


@pytest.fixture(scope="session")
def hostile_npz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("data") / "hostile.npz"
    banded_npz(path, 50, 8, width=3, noise=0.2, signal=0.8, class_names=HOSTILE)
    return path


def _train(npz: Path, out: Path, name: str, **options: object) -> Path:
    splits = load_data(str(npz), seed=0)
    torch.manual_seed(0)
    model = build_model(name, splits.shape, splits.train.n_classes, **options)
    fit(model, splits, TrainConfig(epochs=4, batch_size=16, lr=0.01, snapshots=[0, 2, 4]), out, progress=False)
    return out


@pytest.fixture(scope="session")
def softmax_run(hostile_npz: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _train(hostile_npz, tmp_path_factory.mktemp("runs") / "softmax", "softmax")


@pytest.fixture(scope="session")
def mlp_run(hostile_npz: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _train(hostile_npz, tmp_path_factory.mktemp("runs") / "mlp", "mlp", hidden=[20])


@pytest.fixture(scope="session")
def cnn_run(hostile_npz: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _train(hostile_npz, tmp_path_factory.mktemp("runs") / "cnn", "cnn", channels=[4, 6], kernel=3)
