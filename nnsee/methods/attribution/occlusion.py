"""Occlusion (Zeiler & Fergus 2014) with Captum's semantics: how much the target score drops when a window is hidden.

Exactly Captum's ``Occlusion(model).attribute(x, sliding_window_shapes, strides, baselines, target)``:

* the window covers ``(C', h, w)`` elements; a 2-tuple ``(h, w)`` (or an int ``k`` for ``(k, k)``) means all
  channels, ``(C, h, w)``. ``stride`` is an int for every axis (channels included, as in Captum), or ``(sy, sx)``
  (channel stride 1), or ``(sc, sy, sx)``. A stride may not exceed the window along an axis the window does not cover
  whole (some elements would never be occluded);
* along an axis of size ``D`` the window takes ``ceil((D − w) / s) + 1`` positions ``0, s, 2s, …``; the last one may
  stick out of the image and is then cut off;
* each window is replaced by ``baseline`` (a number, one image, or one per input) and gives
  ``eval_diff = f(x)[t] − f(x_occluded)[t]`` (logit, or softmax probability with ``output="softmax"`` — in Captum, a
  softmax-wrapped model), added to every element it covers;
* each element's sum is divided by the number of windows covering it (overlapping windows are averaged).

The occluded copies of all inputs are evaluated in chunks whose size the chunk tuner (:mod:`nnsee.models.chunking`)
picks from the measured time per copy, within a memory cap (16 MiB of input for full passes, 32 MiB for the largest
tensor per pass of the region recomputation), so memory stays bounded and the machine runs at its best batch size
(one giant batch is slower, and Captum's default of one copy per forward pass much slower). The model is run in eval
mode and gets its training flag back.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from nnsee.methods.attribution.integrated_gradients import as_baseline
from nnsee.methods.attribution.occlusion_region import Layout, layout, region_plan
from nnsee.methods.attribution.region_forward import RegionForward
from nnsee.methods.attribution.target import as_input, selected, target_index
from nnsee.methods.base import MethodError, evaluating, to_numpy
from nnsee.models.chunking import FORWARD_ELEMENTS, cap_for, chunk_key, chunks

# Elements per forward chunk: copies of 32 images of 1×28×28 ran fastest for a small CNN on a 2-core CPU (side by
# side with 64 and 128, and with Captum's batches of 32); 3×128×128 images ran best at 2–8 per pass (MIN_CHUNK).
CHUNK_ELEMENTS = 32 * 28 * 28
MIN_CHUNK, MAX_CHUNK = 4, 256
REGION_MAX_CHUNK = 1024
# recompute="auto" takes the region path when its crops skip at least this share of a full pass's multiply-adds: on
# ResNet-18 at 64 px (16% skipped) the crops' bookkeeping made the region path 1.4× slower than full passes
AUTO_MIN_SKIPPED = 0.3
# The region recomputation's memory cap: elements of the largest tensor per pass (32 MiB in float32).
REGION_CAP_ELEMENTS = 2**23
# The clean activations kept per group of images for the region recomputation (elements; 128 MiB in float32).
REGION_STORED = 2**25


def occlusion_batch_size(image_shape: Sequence[int]) -> int:
    """Occluded copies per forward pass: ``CHUNK_ELEMENTS // prod(image_shape)`` within MIN_CHUNK..MAX_CHUNK."""
    return int(min(MAX_CHUNK, max(MIN_CHUNK, CHUNK_ELEMENTS // max(1, int(np.prod(image_shape))))))


def region_cap(copy_elements: int) -> int:
    """The most copies per pass of the region recomputation: ``REGION_CAP_ELEMENTS // copy_elements``, 1..1024."""
    return int(min(REGION_MAX_CHUNK, max(1, REGION_CAP_ELEMENTS // max(1, copy_elements))))


@dataclass(frozen=True)
class Grid:
    """The window positions along each axis of an image (C, H, W).

    ``starts[d]`` the first index of each position along axis d; ``masks[d]`` (positions, D_d) bool, True where the
    window at that position covers the index (cut off at the border).
    """

    starts: tuple[torch.Tensor, torch.Tensor, torch.Tensor]
    masks: tuple[torch.Tensor, torch.Tensor, torch.Tensor]

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(len(s) for s in self.starts)  # type: ignore[return-value]

    @property
    def window(self) -> tuple[int, int, int]:
        """The window's extent (C', h, w): the first position's, which is never cut off."""
        return tuple(int(m[0].sum()) for m in self.masks)  # type: ignore[return-value]

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    def mask(self, positions: torch.Tensor) -> torch.Tensor:
        """The (k, C, H, W) bool masks of the windows at flat ``positions`` (C-order over ``shape``)."""
        _, py, px = self.shape
        pc, rest = positions // (py * px), positions % (py * px)
        mc, my, mx = (m[i] for m, i in zip(self.masks, (pc, rest // px, rest % px), strict=True))
        return mc[:, :, None, None] & my[:, None, :, None] & mx[:, None, None, :]

    def count(self) -> torch.Tensor:
        """(C, H, W): how many windows cover each element."""
        cc, cy, cx = (m.sum(0) for m in self.masks)
        return cc[:, None, None] * cy[None, :, None] * cx[None, None, :]

    def spread(self, values: torch.Tensor) -> torch.Tensor:
        """(N, *shape) values per window → (N, C, H, W) sums over the windows covering each element."""
        mc, my, mx = (m.to(device=values.device, dtype=values.dtype) for m in self.masks)
        return torch.einsum("npqr,pc,qh,rw->nchw", values, mc, my, mx)


def _triple(value: int | Sequence[int], name: str) -> tuple[int, ...]:
    t = (int(value),) * 3 if isinstance(value, (int, np.integer)) else tuple(int(v) for v in value)
    if len(t) not in (2, 3) or any(v < 1 for v in t):
        raise MethodError(f"{name} must be a positive int, (h, w) or (channels, h, w), got {value!r}")
    return t


def occlusion_grid(image_shape: Sequence[int], window: int | Sequence[int],
                   stride: int | Sequence[int] = 1) -> Grid:
    """Captum's window positions for images ``(C, H, W)``; ``window``/``stride`` as in :func:`occlusion`."""
    shape = tuple(int(d) for d in image_shape)
    w = _triple(window, "window")
    if len(w) == 2 and not isinstance(window, (int, np.integer)):
        w = (shape[0], *w)
    elif isinstance(window, (int, np.integer)):
        w = (shape[0], w[1], w[2])
    s = _triple(stride, "stride")
    if len(s) == 2:
        s = (1, *s)
    if any(wd > d for wd, d in zip(w, shape, strict=True)):
        raise MethodError(f"the occlusion window {w} (channels, h, w) is larger than the images {shape}")
    for axis, (d, wd, sd) in enumerate(zip(shape, w, s, strict=True)):
        if sd > wd and wd < d:
            raise MethodError(f"the stride {s} exceeds the window {w} along axis {'CHW'[axis]}: some elements would "
                              "never be occluded; use a stride no larger than the window")
    starts, masks = [], []
    for d, wd, sd in zip(shape, w, s, strict=True):
        start = torch.arange(math.ceil((d - wd) / sd) + 1) * sd
        index = torch.arange(d)
        starts.append(start)
        masks.append((index[None, :] >= start[:, None]) & (index[None, :] < start[:, None] + wd))
    return Grid(tuple(starts), tuple(masks))  # type: ignore[arg-type]


Spans = int | Iterable[tuple[int, int]]


def _spans(rows: int, batch_size: Spans) -> Iterable[tuple[int, int]]:
    """``batch_size`` rows at a time, or the given ``(start, stop)`` spans (e.g. from :func:`chunks`)."""
    if not isinstance(batch_size, (int, np.integer)):
        return batch_size
    if batch_size < 1:
        raise MethodError(f"batch_size must be at least 1, got {batch_size}")
    return ((start, min(start + int(batch_size), rows)) for start in range(0, rows, int(batch_size)))


def occluded_chunks(x: torch.Tensor, baseline: torch.Tensor, grid: Grid,
                    batch_size: Spans) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """``(rows, images, copies)``: flat row indices ``image * grid.size + position``, each row's image, and the
    occluded copies, ``batch_size`` rows at a time (or over the given spans), over every image of ``x`` and every
    window position."""
    device = x.device
    masks = Grid(grid.starts, tuple(m.to(device) for m in grid.masks))  # type: ignore[arg-type]
    rows = len(x) * grid.size
    for start, stop in _spans(rows, batch_size):
        r = torch.arange(start, stop, device=device)
        img = r // grid.size
        yield r, img, torch.where(masks.mask(r % grid.size), baseline[img], x[img])


def occluded_crops(x: torch.Tensor, baseline: torch.Tensor, grid: Grid, batch_size: Spans
                   ) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]]:
    """``(rows, images, y, x, crops)`` as :func:`occluded_chunks`, but only the window's ``h × w`` box of each copy
    (all channels): ``crops[b]`` is the occluded copy's ``[:, y_b : y_b + h, x_b : x_b + w]``, the box placed at the
    window's start and moved inside the image where the window is cut off at the border."""
    device, (_, height, width) = x.device, x.shape[1:]
    mc, my, mx = (m.to(device) for m in grid.masks)
    _, h, w = grid.window
    (_, py, px), rows = grid.shape, len(x) * grid.size
    for start, stop in _spans(rows, batch_size):
        r = torch.arange(start, stop, device=device)
        img, pos = r // grid.size, r % grid.size
        pc, iy, ix = pos // (py * px), (pos // px) % py, pos % px
        y0 = grid.starts[1].to(device)[iy].clamp(max=height - h)
        x0 = grid.starts[2].to(device)[ix].clamp(max=width - w)
        ry, rx = y0[:, None] + torch.arange(h, device=device), x0[:, None] + torch.arange(w, device=device)
        mask = (mc[pc][:, :, None, None] & my[iy].gather(1, ry)[:, None, :, None]
                & mx[ix].gather(1, rx)[:, None, None, :])
        b = img[:, None, None, None]
        c = torch.arange(x.shape[1], device=device)[None, :, None, None]
        yy, xx = ry[:, None, :, None], rx[:, None, None, :]
        yield r, img, y0, x0, torch.where(mask, baseline[b, c, yy, xx], x[b, c, yy, xx])


def occlusion(model: nn.Module, x: np.ndarray | torch.Tensor, target: int | Sequence[int] | np.ndarray | torch.Tensor,
              window: int | Sequence[int] = (4, 4), stride: int | Sequence[int] = 1,
              baseline: float | np.ndarray | torch.Tensor = 0.0, output: str = "logit",
              batch_size: int | None = None, recompute: str = "auto") -> np.ndarray:
    """Captum-style occlusion attributions ``(N, C, H, W)``: the averaged score drop of the windows over each element.

    ``recompute``: ``"region"`` recomputes only what each window changes (:mod:`.occlusion_region`; for models
    torch.fx traces that have a convolution or pooling on their input, MethodError for others), ``"full"`` runs
    every occluded copy through the whole model, ``"auto"`` the region where the model allows it and its crops skip
    at least ``AUTO_MIN_SKIPPED`` of a full pass's multiply-adds.
    ``batch_size``: occluded copies per forward pass (None: chosen by the chunk tuner from measured throughput).
    """
    if recompute not in ("auto", "region", "full"):
        raise MethodError(f"recompute must be 'auto', 'region' or 'full', got {recompute!r}")
    xt = as_input(x, model)
    grid = occlusion_grid(xt.shape[1:], window, stride)
    base = as_baseline(baseline, xt)
    n = len(xt)
    with evaluating(model):
        plan = None if recompute == "full" else region_plan(model)
        lay = None if plan is None else layout(plan, xt, grid.window[1:])
        if lay is not None and recompute == "auto" and lay.skipped < AUTO_MIN_SKIPPED:
            lay = None  # the crops would save too little to pay for their bookkeeping
        if lay is None and recompute == "region":
            raise MethodError(f"{type(model).__name__} has no convolution or pooling on its input that torch.fx can "
                              "trace, so occlusion cannot recompute only the occluded region: use recompute='full' "
                              "(or 'auto')")
        if lay is None:
            # a clone, so a model that changes its input in place cannot change the images the copies are made of
            scores = model(xt.clone())
            t = target_index(target, n, scores.shape[1] if scores.ndim == 2 else 0, xt.device)
            clean = selected(scores, t, output)
            drops = torch.empty(n * grid.size, dtype=clean.dtype, device=xt.device)
            key = chunk_key(model, "occlusion", xt.shape[1:], xt.dtype, xt.device)
            spans = chunks(n * grid.size, key, cap_for(xt.shape[1:], FORWARD_ELEMENTS), batch_size, xt.device)
            for rows, img, copies in occluded_chunks(xt, base, grid, spans):
                drops[rows] = clean[img] - selected(model(copies), t[img], output)
        else:
            drops = _region_drops(lay, xt, base, grid, target, output, batch_size)
    total = grid.spread(drops.view(n, *grid.shape))
    return to_numpy(total / grid.count().to(total))


def _region_drops(lay: Layout, x: torch.Tensor, baseline: torch.Tensor, grid: Grid,
                  target: int | Sequence[int] | np.ndarray | torch.Tensor, output: str,
                  batch_size: int | None) -> torch.Tensor:
    """Every window's score drop (N · positions,) by the region recomputation, in groups of images whose clean
    activations take at most ``REGION_STORED`` elements."""
    probe = RegionForward(lay, x[:1])
    n, group = len(x), max(1, REGION_STORED // max(1, probe.stored_elements()))
    key = chunk_key(lay.plan.model, "occlusion region", (*grid.window[1:], *x.shape[1:]), x.dtype, x.device)
    cap = region_cap(probe.copy_elements())
    scores = probe.scores
    t = target_index(target, n, scores.shape[1] if scores.ndim == 2 else 0, x.device)
    drops = torch.empty(n * grid.size, dtype=scores.dtype, device=x.device)
    for first in range(0, n, group):
        part = slice(first, first + group)
        engine = probe if n == 1 else RegionForward(lay, x[part])  # one image: the probe is the engine
        # the clean scores computed as the copies' are: the same rounding cancels in the drops
        tg = t[part]
        clean = selected(engine.scores, tg, output)
        spans = chunks(len(x[part]) * grid.size, key, cap, batch_size, x.device)
        for rows, img, y0, x0, crops in occluded_crops(x[part], baseline[part], grid, spans):
            drops[rows + first * grid.size] = clean[img] - selected(engine.forward(img, y0, x0, crops), tg[img],
                                                                    output)
    return drops
