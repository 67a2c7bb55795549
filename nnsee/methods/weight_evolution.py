"""Weight evolution: the weight images of a model at each weight snapshot taken during training.

For softmax regression the images are the class templates ``W[k]`` (K, C, H, W). For an MLP they are the incoming
weights ``W_1[j]`` of the first ``n_units`` units of the first hidden layer (n_units, C, H, W); for a CNN (any model
with an ``nn.Conv2d``: nnsee's, a ResNet, a VGG) the first ``n_units`` filters of its first convolution
(n_units, C, kh, kw). The same units or filters at every epoch, so a strip shows each one forming. (What the *feature
maps* of a CNN do over training is :mod:`nnsee.methods.dataset_views.feature_evolution`.)

The snapshots come by value, ``{epoch: state_dict}`` (a run's ``snapshots/`` folder loaded by the caller); the views
read no files.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import nn

from nnsee.methods.attribution.filters import first_layer_filters
from nnsee.methods.base import at_each_snapshot, dense_stages
from nnsee.methods.hidden_units import incoming_weights
from nnsee.methods.templates import class_templates

Snapshots = Mapping[int, Mapping[str, torch.Tensor]]  # epoch → the model's state dict at that epoch


def weight_images(model: nn.Module, input_shape: Sequence[int] | None = None, n_units: int = 16) -> np.ndarray:
    """Class templates of a softmax model, the first ``n_units`` hidden units' incoming weights of an MLP, or the
    first ``n_units`` filters of a CNN's first convolution."""
    if any(isinstance(m, nn.Conv2d) for m in model.modules()):
        return first_layer_filters(model)[:n_units].copy()  # a copy: the weights' memory is reloaded per snapshot
    stages = dense_stages(model, input_shape, "weight images")
    if len(stages) == 1:
        return class_templates(model, input_shape)
    return incoming_weights(model, input_shape, stages[0].name)[:n_units]


def templates_over_training(model: nn.Module, snapshots: Snapshots, input_shape: Sequence[int] | None = None,
                            n_units: int = 16) -> dict[int, np.ndarray]:
    """``{epoch: weight_images(model with the weights of epoch)}`` in epoch order (empty for no snapshots).

    Each state dict is loaded (strictly) into one copy of ``model``; ``model`` itself is not modified.
    """
    return {epoch: weight_images(work, input_shape, n_units) for epoch, work in at_each_snapshot(model, snapshots)}
