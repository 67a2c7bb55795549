"""Tiny real runs (8x8, 3 classes, trained in seconds) and a real `nnsee serve` subprocess, shared by these tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from serve.serve_util import Server, start_server, stop
from tiny import HOSTILE_NAMES

from nnsee.data import load_data
from nnsee.models import build_model
from nnsee.train import TrainConfig, fit


@pytest.fixture(scope="session")
def serve_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 0.2, size=(150, 8, 8)).astype(np.float32)
    y = np.repeat(np.arange(3), 50)
    for i, k in enumerate(y):  # class k: a bright band of rows 2k..2k+2
        x[i, 2 * k : 2 * k + 3] += 0.8
    root = tmp_path_factory.mktemp("serve")
    npz = root / "bands.npz"
    np.savez(npz, x=x, y=y, class_names=np.array(HOSTILE_NAMES))
    splits = load_data(str(npz), seed=0)
    out = {}
    for name, options in {"softmax": {}, "mlp": {"hidden": [12]}, "cnn": {"channels": [4, 6], "kernel": 3}}.items():
        torch.manual_seed(0)
        model = build_model(name, splits.shape, splits.train.n_classes, **options)
        fit(model, splits, TrainConfig(epochs=6, batch_size=16, lr=0.01), root / name, progress=False)
        out[name] = root / name
    return out



@pytest.fixture(scope="session")
def server(serve_runs: dict[str, Path]) -> Iterator[Server]:
    s = start_server([serve_runs["softmax"], serve_runs["mlp"], serve_runs["cnn"]])
    yield s
    stop(s)
