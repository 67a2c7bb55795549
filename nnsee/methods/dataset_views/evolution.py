"""Zeiler & Fergus Fig. 4: how the top images and projections of a layer's channels change over training.

For each snapshot epoch of a run (``nnsee train --snapshots``), the snapshot's weights are loaded into a copy of the
run's model and :func:`~nnsee.methods.dataset_views.top_activations.top_activations` (and, optionally,
:func:`~nnsee.methods.dataset_views.projections.top9_projections`) are computed on the same images. The paper shows
the single strongest activation per feature map at epochs [1, 2, 5, 10, 20, 30, 40, 64].
"""

from __future__ import annotations

import copy
import os
from collections.abc import Sequence
from dataclasses import dataclass

from torch import nn

from nnsee.methods.dataset_views._stream import Images
from nnsee.methods.dataset_views.projections import TopProjections, top9_projections
from nnsee.methods.dataset_views.top_activations import TopK, top_activations
from nnsee.train.run import list_snapshots, load_run, load_snapshot


@dataclass(frozen=True)
class EpochFeatures:
    """The top-k of one snapshot epoch and, when asked for, their projections."""

    epoch: int
    topk: TopK
    projections: TopProjections | None


def features_over_training(run_path: str | os.PathLike[str], images: Images, layer: str,
                           epochs: Sequence[int] | None = None, k: int = 9, projections: bool = True,
                           standardize: bool = True, model: nn.Module | None = None,
                           batch_size: int | None = None) -> dict[int, EpochFeatures]:
    """``{epoch: EpochFeatures}`` for the run's snapshot ``epochs`` (default: all of them), in epoch order.

    ``images`` are raw images as the data set holds them; with ``standardize`` the run's standardization is applied
    per batch (crops show the raw images). ``model`` is needed only for a run of a custom module; it is not modified.
    """
    run = load_run(run_path, model=copy.deepcopy(model) if model is not None else None)
    work = run.model
    transform = None
    if standardize and run.standardizer is not None:
        transform = run.standardizer.transform
    wanted = sorted(int(e) for e in (epochs if epochs is not None else list_snapshots(run_path)))
    expect = {name: tuple(v.shape) for name, v in work.state_dict().items()}
    out = {}
    for epoch in wanted:
        work.load_state_dict(load_snapshot(run_path, epoch, expect_shapes=expect))
        top = top_activations(work, images, layer, k=k, batch_size=batch_size, transform=transform)
        proj = top9_projections(work, images, top, layer, transform=transform) if projections else None
        out[epoch] = EpochFeatures(epoch, top, proj)
    return out
