"""Small real runs (trained here in seconds) with hostile class names, shared by the report tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from tiny import HOSTILE_NAMES as HOSTILE

from nnsee.data import load_data
from nnsee.models import build_model
from nnsee.train import TrainConfig, fit


@pytest.fixture(scope="session")
def hostile_npz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 0.2, size=(150, 8, 8)).astype(np.float32)
    y = np.repeat(np.arange(3), 50)
    for i, k in enumerate(y):
        x[i, 2 * k : 2 * k + 3] += 0.8
    path = tmp_path_factory.mktemp("data") / "hostile.npz"
    np.savez(path, x=x, y=y, class_names=np.array(HOSTILE))
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
