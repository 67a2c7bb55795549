"""Zeiler & Fergus Fig. 2: each top activation projected back to pixels by the deconvnet, beside its image patch.

For channel ``f`` and its ``j``-th best image ``i`` (from
:func:`~nnsee.methods.dataset_views.top_images.top_images_per_channel`), the projection is
:func:`~nnsee.methods.attribution.deconvnet.project_activation` of the single activation ``A[i, f, y, x]`` at the
recorded maximum: ``∂A[i, f, y, x] / ∂x_i`` under the deconvnet ReLU rule, all other activations of the layer
zeroed. Both the projection and the image are also cropped to that unit's receptive field, as in the paper's figure
(:func:`~nnsee.methods.dataset_views.receptive_field.field_of`: a chain's field, the union over a branching model's
paths, or the whole image when the field covers it).

The projections run in batches whose autograd working set stays near :data:`BATCH_BYTES`: a no-grad probe of one
image counts the layer's calls (once, not once a batch) and sums the input and every leaf module's output up to the
layer's last call, where each gradient-on pass stops (what the backward pass keeps). For ResNet-18 at 224 px that is
about 30 MB at layer4 (6 images a batch instead of 256, 7.7 GB) and 4 MB at the stem's conv (48 images).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from nnsee.data.lazy import LazyImages
from nnsee.methods.attribution.deconvnet import project_activation
from nnsee.methods.attribution.target import as_input
from nnsee.methods.base import MethodError
from nnsee.methods.dataset_views._stopped import LayerCalls, autograd_batch_size, layer_calls
from nnsee.methods.dataset_views._stream import Images, Transform, stream
from nnsee.methods.dataset_views.receptive_field import ReceptiveField, crop, field_of
from nnsee.methods.dataset_views.top_images import TopK
from nnsee.models.chunking import chunk_key, chunks
from nnsee.models.hooks import eval_mode


@dataclass(frozen=True)
class TopProjections:
    """``projections`` (F, k, C, H, W) over the whole image; ``projection_crops`` and ``image_crops``
    (F, k, C, rf_h, rf_w) cut to each unit's receptive field ``rf`` (zero outside the image)."""

    projections: np.ndarray
    projection_crops: np.ndarray
    image_crops: np.ndarray
    rf: ReceptiveField
    how: str = ""  # where the field comes from, for people (see field_of)


#: Working set of one batch of projections (the leaf outputs autograd keeps), when batch_size is not given.
BATCH_BYTES = 192 * 2**20
#: The most images a projection batch takes.
MAX_BATCH = 256


def projection_batch_size(model: nn.Module, x: torch.Tensor, layer: str | None = None,
                          seen: LayerCalls | None = None) -> int:
    """Images per projection batch: :data:`BATCH_BYTES` over the bytes autograd keeps for one image, the input and
    every leaf output up to ``layer``'s last call (the gradient-on pass stops there; ``layer=None``: the whole
    pass), at least 1 and at most :data:`MAX_BATCH`. ``seen``: :func:`~._stopped.layer_calls` already made."""
    return autograd_batch_size(model, x, BATCH_BYTES, layer, seen, MAX_BATCH)


def gather(images: Images, index: np.ndarray) -> np.ndarray:
    """``images[index]`` for an array; a callable giving batches (or a list of batches) is streamed again."""
    index = np.asarray(index, dtype=np.int64)
    if isinstance(images, LazyImages):  # a streamed set reads only the images asked for
        return images[index.reshape(-1)].reshape(*index.shape, *images.shape[1:])
    if isinstance(images, (np.ndarray, torch.Tensor)):
        picked = images[torch.as_tensor(index)] if isinstance(images, torch.Tensor) else images[index]
        return picked.detach().cpu().numpy() if isinstance(picked, torch.Tensor) else np.asarray(picked)
    if not callable(images) and iter(images) is images:
        raise MethodError("to fetch the top images again, give the images as an array or as a callable that streams "
                          "them (a one-shot iterator was used up by top_images_per_channel)")
    wanted = {int(i) for i in index.reshape(-1)}
    found: dict[int, np.ndarray] = {}
    start = 0
    for batch in stream(images, 1):
        arr = batch.detach().cpu().numpy() if isinstance(batch, torch.Tensor) else np.asarray(batch)
        for i in wanted.intersection(range(start, start + len(arr))):
            found[i] = arr[i - start]
        start += len(arr)
    missing = wanted.difference(found)
    if missing:
        raise MethodError(f"the image stream has {start} images; indices {sorted(missing)[:5]} are missing")
    return np.stack([found[int(i)] for i in index.reshape(-1)]).reshape(*index.shape, *arr.shape[1:])


def top9_projections(model: nn.Module, images: Images, topk: TopK, layer: str | None = None,
                     rule: str = "deconvnet", transform: Transform | None = None,
                     batch_size: int | None = None) -> TopProjections:
    """Deconvnet projections (and receptive-field crops) of every top activation in ``topk``.

    ``images`` are those ``topk`` was computed on (an array, or a callable that streams them again); ``transform``
    (e.g. the run's standardization) turns them into model inputs, and the image crops show them untransformed.
    ``layer`` defaults to ``topk.layer``; ``rule`` "guided" gives guided-backprop projections instead.
    ``batch_size``: images per backward pass (default: the size that runs fastest, found by
    :mod:`nnsee.models.chunking` timing the real batches, at most :func:`projection_batch_size`).
    """
    layer = layer or topk.layer
    if len(topk.map_shape) != 2:
        raise MethodError(f"projections need a layer with feature maps (N, F, h, w); {layer!r} is flat")
    f, k = topk.image_index.shape
    raw = gather(images, topk.image_index.reshape(-1))  # (F·k, C, H, W)
    x = transform(raw) if transform is not None else raw
    rf, how = field_of(model, layer, raw.shape[1:])
    with eval_mode(model):
        seen = layer_calls(model, as_input(x[:1], model), [layer])  # once: each batch's pass stops at the layer
    one = as_input(x[:1], model)
    cap = batch_size or projection_batch_size(model, one, layer, seen)  # the memory bound
    key = chunk_key(model, f"projection of {layer} ({rule})", one.shape[1:], one.dtype, one.device)
    channels = np.repeat(np.arange(f), k)
    positions = topk.position.reshape(-1, 2)
    proj = np.concatenate([
        project_activation(model, x[a:b], layer, channels[a:b], positions[a:b], rule=rule, calls=seen.calls[layer])
        for a, b in chunks(len(x), key, cap, batch_size, one.device)
    ])
    proj_crops = np.stack([crop(p, pos, rf) for p, pos in zip(proj, positions, strict=True)])
    image_crops = np.stack([crop(im, pos, rf) for im, pos in zip(raw, positions, strict=True)])
    shape = (f, k)
    return TopProjections(proj.reshape(*shape, *proj.shape[1:]), proj_crops.reshape(*shape, *proj_crops.shape[1:]),
                          image_crops.reshape(*shape, *image_crops.shape[1:]), rf, how)
