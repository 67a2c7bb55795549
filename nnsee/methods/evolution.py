"""Evolution: weight images at the snapshot epochs of a run (``nnsee train --snapshots``).

For softmax regression the images are the class templates ``W[k]`` (K, C, H, W). For an MLP they are the incoming
weights ``W_1[j]`` of the first ``n_units`` units of the first hidden layer (n_units, C, H, W): the same units at
every epoch, so a strip shows each one forming.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from nnsee.methods.base import dense_stages
from nnsee.methods.hidden_units import incoming_weights
from nnsee.methods.templates import class_templates
from nnsee.train.run import list_snapshots, load_run, load_snapshot


def snapshot_weights(
    run_path: str | os.PathLike[str], model: nn.Module | None = None
) -> dict[int, dict[str, torch.Tensor]]:
    """``{epoch: state_dict}`` of every snapshot, in epoch order (empty if the run kept none).

    Shapes are checked against ``model``'s state dict when given, else against the run's recorded weight shapes.
    """
    expect = {k: tuple(v.shape) for k, v in model.state_dict().items()} if model is not None else None
    return {epoch: load_snapshot(run_path, epoch, expect_shapes=expect) for epoch in list_snapshots(run_path)}


def weight_images(model: nn.Module, input_shape: Sequence[int] | None = None, n_units: int = 16) -> np.ndarray:
    """Class templates of a softmax model, or the first ``n_units`` hidden units' incoming weights of an MLP."""
    stages = dense_stages(model, input_shape, "weight images")
    if len(stages) == 1:
        return class_templates(model, input_shape)
    return incoming_weights(model, input_shape, stages[0].name)[:n_units]


def templates_over_training(
    run_path: str | os.PathLike[str], model: nn.Module | None = None, n_units: int = 16
) -> dict[int, np.ndarray]:
    """``{epoch: weight images}`` at each snapshot epoch (see the module docstring for which images).

    ``model`` is needed only for a run of a custom module (as for ``load_run``); it is not modified.
    """
    run = load_run(run_path, model=copy.deepcopy(model) if model is not None else None)
    work = run.model
    snapshots = snapshot_weights(run_path, work)
    out = {}
    for epoch, state in snapshots.items():
        work.load_state_dict(state)
        out[epoch] = weight_images(work, run.input_shape, n_units)
    return out
