"""Feature evolution (Zeiler & Fergus Fig. 4): how the top images and projections of a layer's channels change over
training. (What the *weight images* of a dense model do over training is :mod:`nnsee.methods.weight_evolution`.)

For each weight snapshot ``{epoch: state_dict}`` (given by value; the view reads no files), the weights are loaded
into one copy of the model and :func:`~nnsee.methods.dataset_views.top_images.top_images_per_channel` (and,
optionally, :func:`~nnsee.methods.dataset_views.projections.top9_projections`) are computed on the same images. The
paper shows the single strongest activation per feature map at epochs [1, 2, 5, 10, 20, 30, 40, 64].
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn

from nnsee.methods.base import at_each_snapshot
from nnsee.methods.dataset_views._stream import Images, Transform
from nnsee.methods.dataset_views.projections import TopProjections, top9_projections
from nnsee.methods.dataset_views.top_images import TopK, top_images_per_channel


@dataclass(frozen=True)
class EpochFeatures:
    """The top-k of one snapshot epoch and, when asked for, their projections."""

    epoch: int
    topk: TopK
    projections: TopProjections | None


def features_over_training(model: nn.Module, snapshots: Mapping[int, Mapping[str, torch.Tensor]], images: Images,
                           layer: str, k: int = 9, projections: bool = True, transform: Transform | None = None,
                           batch_size: int | None = None) -> dict[int, EpochFeatures]:
    """``{epoch: EpochFeatures}`` for every snapshot ``{epoch: state_dict}`` of ``model``'s weights, in epoch order.

    ``images`` as the data set holds them; ``transform`` (e.g. the run's ``standardizer.transform``) is applied per
    batch, so crops show the images as given. Each state dict is loaded strictly into one copy of ``model``;
    ``model`` itself is not modified.
    """
    out = {}
    for epoch, work in at_each_snapshot(model, snapshots):
        top = top_images_per_channel(work, images, layer, k=k, batch_size=batch_size, transform=transform)
        proj = top9_projections(work, images, top, layer, transform=transform) if projections else None
        out[epoch] = EpochFeatures(epoch, top, proj)
    return out
