"""Zeiler & Fergus Fig. 7: slide a grey square over the image and watch the classifier and one feature map.

For each occluder position (the same grid as :func:`occlusion`: ``ceil((D − w)/s) + 1`` positions per axis from 0,
the last possibly cut off at the border; the square covers all channels and is filled with ``baseline``, 0 being
grey for standardized inputs):

* ``prob_true`` — ``p(true class | occluded image)``, the softmax probability itself (Fig. 7d). Captum's occlusion
  instead spreads the *drop* ``f(x) − f(x_occ)`` back over pixels;
* ``most_probable`` — the most probable class (Fig. 7e);
* ``strongest_map_activity`` — the total activation (summed over space) of one feature map of ``layer``: the channel
  with the strongest response (largest single activation) on the unoccluded image, ``strongest_channel`` (Fig. 7b).

Maps are indexed by position ``(N, Py, Px)``; ``positions_y``/``positions_x`` are the occluder's top-left row and
column at each grid index. The layer's output is summed inside its forward hook, before any later in-place op; a
layer called more than once in the forward pass is read at its last call (Captum's rule for layers).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from nnsee.methods.attribution.integrated_gradients import as_baseline
from nnsee.methods.attribution.occlusion import occluded_chunks, occlusion_batch_size, occlusion_grid
from nnsee.methods.attribution.target import as_input, target_index
from nnsee.methods.base import MethodError, to_numpy
from nnsee.models.hooks import eval_mode, on_output


@dataclass(frozen=True)
class OcclusionMaps:
    """Zeiler & Fergus Fig. 7 maps by occluder position (N images, Py × Px positions)."""

    prob_true: np.ndarray  # (N, Py, Px), model dtype: softmax probability of the true class with the occluder there
    most_probable: np.ndarray  # (N, Py, Px) int64: argmax class with the occluder there
    strongest_map_activity: np.ndarray  # (N, Py, Px), model dtype: Σ over space of map strongest_channel
    strongest_channel: np.ndarray  # (N,) int64: the channel of `layer` with the largest activation unoccluded
    positions_y: np.ndarray  # (Py,) int64: the occluder's first row at each grid row
    positions_x: np.ndarray  # (Px,) int64: the occluder's first column at each grid column


def occlusion_maps(model: nn.Module, x: np.ndarray | torch.Tensor,
                   true_class: int | Sequence[int] | np.ndarray | torch.Tensor, window: int | Sequence[int] = (4, 4),
                   stride: int | Sequence[int] = 1, baseline: float | np.ndarray | torch.Tensor = 0.0,
                   layer: str = "conv2", batch_size: int | None = None) -> OcclusionMaps:
    """The three maps of Fig. 7 for a square ``window`` (int or (h, w), all channels) moved by ``stride``."""
    xt = as_input(x, model)
    if isinstance(window, (int, np.integer)):
        window = (int(window), int(window))
    if len(tuple(window)) != 2:
        raise MethodError(f"the occluder is a (h, w) square over all channels; got window {window!r}")
    if not isinstance(stride, (int, np.integer)) and len(tuple(stride)) != 2:
        raise MethodError(f"stride must be an int or (sy, sx), got {stride!r}")
    grid = occlusion_grid(xt.shape[1:], window, stride)
    base = as_baseline(baseline, xt)
    chunk = occlusion_batch_size(xt.shape[1:]) if batch_size is None else int(batch_size)
    n, (_, py, px) = len(xt), grid.shape
    state: dict[str, torch.Tensor] = {}

    def reduce(out: torch.Tensor) -> None:  # summed here, before any later in-place op changes ``out``
        if out.ndim < 3:
            raise MethodError(f"occlusion_maps needs a layer with feature maps (N, channels, ...); {layer!r} gives "
                              f"{tuple(out.shape)}")
        if "channel" not in state:
            state["peak"] = out.flatten(2).amax(dim=2)  # (N, K): each map's strongest single activation
        else:
            state["activity"] = out[torch.arange(len(out)), state["channel"]].flatten(1).sum(1)

    with eval_mode(model), on_output(model, layer, reduce):
        scores = model(xt.clone())  # a model working in place on its input must not change the copies' source
        if "peak" not in state:
            raise MethodError(f"layer {layer!r} was not called in the model's forward pass")
        t = target_index(true_class, n, scores.shape[1] if scores.ndim == 2 else 0, xt.device)
        channel = state["peak"].argmax(dim=1)
        prob = torch.empty(n * grid.size, dtype=scores.dtype, device=xt.device)
        best = torch.empty(n * grid.size, dtype=torch.long, device=xt.device)
        activity = torch.empty(n * grid.size, dtype=scores.dtype, device=xt.device)
        for rows, img, copies in occluded_chunks(xt, base, grid, chunk):
            state["channel"] = channel[img]
            out = model(copies)
            prob[rows] = out.softmax(dim=1).gather(1, t[img, None])[:, 0]
            best[rows] = out.argmax(dim=1)
            activity[rows] = state["activity"].to(activity.dtype)
    return OcclusionMaps(
        prob_true=to_numpy(prob.view(n, py, px)),
        most_probable=to_numpy(best.view(n, py, px)).astype(np.int64),
        strongest_map_activity=to_numpy(activity.view(n, py, px)),
        strongest_channel=to_numpy(channel).astype(np.int64),
        positions_y=to_numpy(grid.starts[1]).astype(np.int64),
        positions_x=to_numpy(grid.starts[2]).astype(np.int64),
    )
