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
images would cost 3.6 GB). The forward pass stops at the layer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from nnsee.methods.base import MethodError
from nnsee.methods.dataset_views._stream import Batch, Images, Transform, prepared, stream
from nnsee.models.hooks import capture, eval_mode, layer_reader, watch_leaves

# Budget for the largest intermediate output of one batch when batch_size is chosen automatically.
AUTO_BATCH_BYTES = 16 * 2**20
AUTO_BATCH_RANGE = (32, 1024)


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


def auto_batch_size(model: nn.Module, x: torch.Tensor, layer: str) -> int:
    """A batch size whose largest intermediate output up to ``layer`` stays near ``AUTO_BATCH_BYTES``.

    Probes one image, records every module's output size up to the layer, and picks a power of two in
    ``AUTO_BATCH_RANGE``.
    """
    largest = [x[:1].numel() * x.element_size()]

    def size(_m: nn.Module, _i: object, out: object) -> None:
        if isinstance(out, torch.Tensor):
            largest[0] = max(largest[0], out.numel() * out.element_size())

    with watch_leaves(model, size), layer_reader(model, layer) as read:
        read(x[:1])  # the whole pass, counting the layer's calls
        largest[0] = x[:1].numel() * x.element_size()
        read(x[:1])  # stopped after the layer's last call
    lo, hi = AUTO_BATCH_RANGE
    n = max(1, AUTO_BATCH_BYTES // largest[0])
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
        bv = (a.amax(dim=(2, 3)) if a.ndim == 4 else a).T.float()  # (F, B): each map's maximum
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


def _merge_stream(read: Callable[[torch.Tensor], dict[str, torch.Tensor]], batches: Iterable[Batch],
                  model: nn.Module, layers: Sequence[str], k: int, transform: Transform | None) -> dict[str, TopK]:
    """Running top-k of every layer over the batches, ``read`` giving each layer's activations for one batch."""
    running = {layer: _RunningTopK(layer, k) for layer in layers}
    seen = 0
    for batch in batches:
        if len(batch) == 0:
            continue
        outputs = read(prepared(batch, model, transform))
        for layer in layers:
            running[layer].add(outputs[layer], seen)
        seen += len(batch)
        del outputs  # free this batch's activations before the next forward pass
    return {layer: r.result(seen) for layer, r in running.items()}


@contextmanager
def _layers_reader(model: nn.Module, layers: Sequence[str]) -> Iterator[Callable[[torch.Tensor], dict]]:
    """``read(x) -> {layer: output at its last call}``; one layer stops the pass there (:func:`layer_reader`),
    several are captured in one whole pass (a clone flows on, so in-place ops after a layer cannot change it)."""
    if len(layers) == 1:
        with layer_reader(model, layers[0]) as read_one:
            yield lambda x: {layers[0]: read_one(x)}
        return
    with ExitStack() as stack:
        seen = {layer: stack.enter_context(capture(model, layer, clone=True)) for layer in layers}

        def read(x: torch.Tensor) -> dict[str, torch.Tensor]:
            model(x)
            missing = [layer for layer, c in seen.items() if c.output is None]
            if missing:
                raise MethodError(f"layer {missing[0]!r} was not called in the forward pass")
            out = {layer: c.output for layer, c in seen.items()}
            for c in seen.values():
                c.output = None
            return out

        yield read


def top_images_per_layer(model: nn.Module, images: Images, layers: Sequence[str], k: int = 9,
                         batch_size: int | None = None, transform: Transform | None = None) -> dict[str, TopK]:
    """:func:`top_images_per_channel` of several layers in one streaming pass (each image is run once):
    ``{layer: TopK}``. ``batch_size`` defaults to :func:`auto_batch_size` of the deepest-reaching layer."""
    layers = list(dict.fromkeys(layers))
    if not layers:
        raise MethodError("no layers were given")
    if k < 1:
        raise MethodError(f"k must be at least 1, got {k}")
    if batch_size is not None and batch_size < 1:
        raise MethodError(f"batch_size must be at least 1, got {batch_size}")
    with eval_mode(model):
        if batch_size is None and isinstance(images, (np.ndarray, torch.Tensor)) and len(images):
            probe = prepared(images[:1], model, transform)
            batch_size = min(auto_batch_size(model, probe, layer) for layer in layers)
        with _layers_reader(model, layers) as read:
            return _merge_stream(read, stream(images, batch_size or 256), model, layers, k, transform)


def top_images_per_channel(model: nn.Module, images: Images, layer: str, k: int = 9, batch_size: int | None = None,
                           transform: Transform | None = None) -> TopK:
    """The ``k`` images with the highest maximum activation in each channel of ``layer`` (see the module doc).

    ``images``: an array (N, C, H, W) as the model sees them, or an iterable of such batches, or a callable giving
    one (read once, lazily). ``transform`` (e.g. a run's ``standardizer.transform``) is applied per batch.
    ``batch_size`` cuts an array (default: :func:`auto_batch_size`). With fewer than k images, k is their number.
    """
    return top_images_per_layer(model, images, [layer], k, batch_size, transform)[layer]
