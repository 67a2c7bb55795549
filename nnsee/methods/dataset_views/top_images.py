"""The top-k images per channel of any layer over a whole data set (Zeiler & Fergus Fig. 2), in one streaming pass.

(The dense-chain counterpart, per hidden unit ``h_j`` of an MLP, is
:func:`nnsee.methods.hidden_units.top_images_per_unit`; this one reads any layer through a hook, scores a
convolutional channel by its map's maximum and says where that maximum lies.)

For channel ``f`` of a layer with output ``A`` (N, F, h, w), image ``i`` scores ``s_if = max_{y,x} A[i, f, y, x]``;
the view keeps, per channel, the ``k`` images with the highest ``s_if`` (ties: lower image index first) and where
in the map that maximum lies (first in row-major order on ties). For a flat layer (N, F) the score is ``A[i, f]``.

Memory is independent of N: per batch, the maxima (B, F) are merged into a running top-k by one stable sort of
(F, k + B) values, and the position of the maximum is looked up only for the entries a batch brings into the top k.
So no more than one batch of activations exists at a time (keeping every conv2 activation of a small CNN over 60k
images would cost 3.6 GB). Each layer's output is merged inside its forward hook at its last call (before any later
in-place op; nothing is cloned or kept), and the forward pass stops right after the deepest layer's last call
(:mod:`._stopped`): several layers cost one forward pass to the deepest, plus a per-channel maximum each.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from nnsee.data.lazy import LazyImages
from nnsee.methods.base import MethodError
from nnsee.methods.dataset_views._stopped import LayerCalls, layer_calls, stopped_pass
from nnsee.methods.dataset_views._stream import Images, Transform, prepared, stream
from nnsee.models.chunking import chunk_key, chunks
from nnsee.models.hooks import eval_mode

# Budget for the largest intermediate output of one batch when batch_size is chosen automatically: at 224 px a
# ResNet stem's output is 3.2 MB an image, so 8 images a batch (about 60 MB in all); Fashion-MNIST-sized CNNs 1024.
AUTO_BATCH_BYTES = 16 * 2**20
AUTO_BATCH_RANGE = (8, 1024)


@dataclass(frozen=True)
class TopK:
    """Per channel, the k best images: ``values`` (F, k) descending, ``image_index`` (F, k) into the stream's
    order, ``position`` (F, k, 2) the (y, x) of the maximum in the channel's map (zeros for a flat layer)."""

    layer: str
    values: np.ndarray
    image_index: np.ndarray
    position: np.ndarray
    n_images: int
    map_shape: tuple[int, ...]

    @property
    def k(self) -> int:
        return self.values.shape[1]


def auto_batch_size(model: nn.Module, x: torch.Tensor | None, layer: str | Sequence[str],
                    seen: LayerCalls | None = None) -> int:
    """A batch size whose largest tensor up to ``layer`` (the deepest of several) stays near ``AUTO_BATCH_BYTES``:
    a power of two in ``AUTO_BATCH_RANGE``, from :func:`~._stopped.layer_calls` of one image (or ``seen``)."""
    seen = seen or layer_calls(model, x[:1], [layer] if isinstance(layer, str) else layer)
    lo, hi = AUTO_BATCH_RANGE
    n = max(1, AUTO_BATCH_BYTES // max(1, seen.largest))
    return int(min(hi, max(lo, 2 ** int(np.log2(n)))))


class _RunningTopK:
    """The running top-k of one layer over batches (see the module doc): values, image indices, flat positions."""

    def __init__(self, layer: str, k: int) -> None:
        self.layer, self.k = layer, k
        self.vals = self.idx = self.pos = None
        self.map_shape: tuple[int, ...] = ()

    def add(self, a: torch.Tensor, seen: int) -> None:
        """Merge a batch's activations ``a`` (B, F, h, w) or (B, F), its first image being number ``seen``."""
        layer, k = self.layer, self.k
        if a.ndim not in (2, 4):
            raise MethodError(f"layer {layer!r} gives shape {tuple(a.shape)}; expected (N, F, h, w) or (N, F)")
        n_channels, shape = a.shape[1], tuple(a.shape[2:])
        if self.vals is None:
            self.map_shape = shape
        elif shape != self.map_shape or n_channels != self.vals.shape[0]:
            raise MethodError(f"layer {layer!r} changed shape between batches ({(n_channels, *shape)}); "
                              "give images of one size")
        bv = (a.amax(dim=(2, 3)) if a.ndim == 4 else a).T  # (F, B): each map's maximum
        bv = bv.to(torch.promote_types(bv.dtype, torch.float32))  # float64 models keep their precision
        bi = torch.arange(seen, seen + bv.shape[1], device=bv.device).expand_as(bv)
        kept = 0 if self.vals is None else self.vals.shape[1]
        if self.vals is not None:  # running entries come first: a stable sort keeps lower indices first on ties
            bv, bi = torch.cat([self.vals, bv], 1), torch.cat([self.idx, bi], 1)
        order = torch.sort(bv, dim=1, descending=True, stable=True).indices[:, :k]
        self.vals, self.idx = bv.gather(1, order), bi.gather(1, order)
        # where the maximum lies, found only for the entries this batch brings into the top k (first on ties)
        fresh = order >= kept
        new_pos = torch.zeros_like(order)
        if a.ndim == 4 and bool(fresh.any()):
            channel, slot = fresh.nonzero(as_tuple=True)
            new_pos[channel, slot] = a.flatten(2)[order[channel, slot] - kept, channel].argmax(dim=1)
        self.pos = new_pos if self.pos is None else torch.where(fresh, new_pos,
                                                                self.pos.gather(1, order.clamp(max=kept - 1)))

    def result(self, seen: int) -> TopK:
        if self.vals is None:
            raise MethodError("no images were given")
        flat, map_shape = self.pos.cpu().numpy(), self.map_shape
        if len(map_shape) == 2:
            position = np.stack([flat // map_shape[1], flat % map_shape[1]], axis=-1)
        else:
            position = np.zeros((*flat.shape, 2), dtype=np.int64)
        return TopK(self.layer, self.vals.cpu().numpy(), self.idx.cpu().numpy().astype(np.int64),
                    position.astype(np.int64), seen, map_shape)


def top_images_per_layer(model: nn.Module, images: Images, layers: Sequence[str], k: int = 9,
                         batch_size: int | None = None, transform: Transform | None = None) -> dict[str, TopK]:
    """:func:`top_images_per_channel` of several layers in one streaming pass (each image is run once, only as far
    as the deepest layer's last call): ``{layer: TopK}``. Each layer's output is merged into its running top-k
    inside its hook, at its last call. ``batch_size`` cuts an array or a streamed set (default: the size that runs
    fastest, found by :mod:`nnsee.models.chunking` timing the real batches, at most :func:`auto_batch_size` of the
    deepest layer)."""
    layers = list(dict.fromkeys(layers))
    if not layers:
        raise MethodError("no layers were given")
    if k < 1:
        raise MethodError(f"k must be at least 1, got {k}")
    if batch_size is not None and batch_size < 1:
        raise MethodError(f"batch_size must be at least 1, got {batch_size}")
    with eval_mode(model):
        seen, batches = None, None
        if isinstance(images, (np.ndarray, torch.Tensor, LazyImages)) and len(images):  # sliced (decoded) by chunks
            one = prepared(images[:1], model, transform)
            seen = layer_calls(model, one, layers)
            cap = batch_size or auto_batch_size(model, None, layers, seen)  # the memory bound
            key = chunk_key(model, f"top-k to {seen.stop}", one.shape[1:], one.dtype, one.device)
            batches = (images[a:b] for a, b in chunks(len(images), key, cap, batch_size, one.device))
        inputs = (prepared(b, model, transform) for b in batches or stream(images, batch_size or 256) if len(b))
        first = next(inputs, None)
        if first is None:
            raise MethodError("no images were given")
        seen = seen or layer_calls(model, first[:1], layers)
        running = {layer: _RunningTopK(layer, k) for layer in layers}
        done = [0]

        def merge(layer: str, out: torch.Tensor) -> None:
            running[layer].add(out, done[0])

        with stopped_pass(model, seen.calls, seen.stop, merge) as run:
            for x in itertools.chain([first], inputs):
                run(x)
                done[0] += len(x)
        return {layer: r.result(done[0]) for layer, r in running.items()}


def top_images_per_channel(model: nn.Module, images: Images, layer: str, k: int = 9, batch_size: int | None = None,
                           transform: Transform | None = None) -> TopK:
    """The ``k`` images with the highest maximum activation in each channel of ``layer`` (see the module doc).

    ``images``: an array (N, C, H, W) as the model sees them, or an iterable of such batches, or a callable giving
    one (read once, lazily). ``transform`` (e.g. a run's ``standardizer.transform``) is applied per batch.
    ``batch_size`` cuts an array (default: :func:`auto_batch_size`). With fewer than k images, k is their number.
    """
    return top_images_per_layer(model, images, [layer], k, batch_size, transform)[layer]
