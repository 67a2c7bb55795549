"""Shared set-up of the streaming benchmarks: Fashion-MNIST streamed from its IDX files, the nnsee CNN, a run folder."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

#: the layers whose top-9 the benchmarks keep: the CNN's two convolutions
LAYERS = ("conv1", "conv2")


def fashion(split: str, quick: bool, stream: bool = True) -> Any:
    """Fashion-MNIST's official ``train`` (60,000) or ``test`` (10,000) images as an ImageSet, streamed from the IDX
    files (``val_fraction=0``, so the training split is the whole training file, in the seeded split order);
    ``--quick`` takes the first 6,000 (train) or 1,000 (test) of them."""
    from nnsee.data import load_data

    splits = load_data("fashion-mnist", val_fraction=0.0, download=False, stream=stream)
    data = splits.train if split == "train" else splits.test
    if quick:
        import numpy as np

        data = data.subset(np.arange(6000 if split == "train" else 1000))
    return data


def cnn(seed: int, input_shape: tuple[int, int, int] = (1, 28, 28)) -> Any:
    """The nnsee CNN (conv 16 and 32 of 5x5, ReLU, max-pool, linear), seeded, in eval mode."""
    import torch

    from nnsee.models.registry import build_model

    torch.manual_seed(seed)
    return build_model("cnn", input_shape, 10).eval()


def cnn_run(folder: Path, data: str, seed: int, extra: tuple[str, ...] = ()) -> Path:
    """A run folder of the nnsee CNN on ``data`` written by ``nnsee train --epochs 0`` (seeded, untrained weights:
    the benchmarks time passes over data, not what the model learned)."""
    out = folder / "run"
    subprocess.run([sys.executable, "-m", "nnsee", "train", "--data", data, "--model", "cnn", "--epochs", "0",
                    "--seed", str(seed), "--out", str(out), *extra], check=True, capture_output=True, text=True)
    return out
