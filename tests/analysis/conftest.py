"""A small CNN run trained here in seconds on a banded npz, shared by the analysis tests."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tiny import banded_npz

from nnsee.data import load_data
from nnsee.models import build_model
from nnsee.train import TrainConfig, fit


@pytest.fixture(scope="session")
def npz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("data") / "bands.npz"
    banded_npz(path, 200, 10, width=2, noise=1.0, signal=0.2, n_classes=3)
    return path


@pytest.fixture(scope="session")
def cnn_run(npz: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    splits = load_data(str(npz), seed=0)
    torch.manual_seed(0)
    model = build_model("cnn", splits.shape, splits.train.n_classes, channels=[4, 6], kernel=3)
    out = tmp_path_factory.mktemp("runs") / "cnn"
    fit(model, splits, TrainConfig(epochs=1, batch_size=32, lr=0.01), out, progress=False)
    return out
