"""The top-k images per channel of one layer: an associative accumulator (Zeiler & Fergus's top-9).

Image ``i`` scores ``s_if = max_{y,x} A[i, f, y, x]`` in channel ``f`` (``A[i, f]`` for a flat layer). The state
keeps, per channel, the ``k`` entries first in the total order *value descending (NaN first, as torch sorts it),
then data-set position ascending*, with the flat map position of the maximum (first in row-major order on ties).
Because the order is total, the top-k of a union is the top-k of the parts' top-k's: merging partial states in
any grouping gives the one-pass result exactly, ties included. Values are kept in float64 (a float32 activation
converts exactly).
"""

from __future__ import annotations

import numpy as np
import torch

from nnsee.errors import RunError

EMPTY = np.iinfo(np.int64).max  # the position of an empty slot: sorts after every real image


def _select(values: torch.Tensor, index: torch.Tensor, pos: torch.Tensor, k: int,
            ordered: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per row, the first ``k`` entries by (value desc, position asc): a stable sort by position, then one by
    value. ``ordered``: equal values already stand in ascending position, so the first sort is skipped."""
    if not ordered:
        by_index = torch.sort(index, dim=1, stable=True).indices
        values, index, pos = values.gather(1, by_index), index.gather(1, by_index), pos.gather(1, by_index)
    order = torch.sort(values, dim=1, descending=True, stable=True).indices[:, :k]
    return values.gather(1, order), index.gather(1, order), pos.gather(1, order)


class TopK:
    """Per channel the ``k`` best images: ``values`` (F, k) float64, ``index`` (F, k) data-set positions,
    ``position`` (F, k) flat (y * w + x) positions of the maximum in the channel's map (0 for a flat layer)."""

    def __init__(self, k: int) -> None:
        self.k = k
        self.values: torch.Tensor | None = None
        self.index: torch.Tensor | None = None
        self.position: torch.Tensor | None = None
        self.map_shape: tuple[int, ...] = ()

    def add(self, a: torch.Tensor, positions: torch.Tensor) -> None:
        """Merge a batch's activations ``a`` (B, F, h, w) or (B, F) of the images at data-set ``positions``."""
        if a.ndim not in (2, 4):
            raise RunError(f"a layer gives shape {tuple(a.shape)}; expected (N, F, h, w) or (N, F)")
        bv = (a.amax(dim=(2, 3)) if a.ndim == 4 else a).T.to(torch.float64)  # (F, B): each map's maximum
        shape = tuple(a.shape[2:])
        if self.values is None:
            self.map_shape = shape
        elif shape != self.map_shape or a.shape[1] != self.values.shape[0]:
            raise RunError(f"a layer changed shape between batches ({tuple(a.shape[1:])}); give images of one size")
        positions = positions.to(bv.device, torch.int64)
        ascending = bool((positions[1:] > positions[:-1]).all())
        # held entries are in (value desc, position asc) order; after them a later, ascending batch keeps that
        ordered = ascending and (self.index is None or bool(self.index.max() < positions.min()))
        bi = positions.expand_as(bv)
        bp = torch.full_like(bi, -1)  # where the maximum lies: found below, only for entries that enter the top k
        if self.values is not None:
            bv = torch.cat([self.values.to(bv.device), bv], 1)
            bi = torch.cat([self.index.to(bv.device), bi], 1)
            bp = torch.cat([self.position.to(bv.device), bp], 1)
        values, index, pos = _select(bv, bi, bp, self.k, ordered)
        fresh = pos < 0
        if bool(fresh.any()):
            channel, slot = fresh.nonzero(as_tuple=True)
            order = torch.arange(len(positions), device=bv.device) if ascending else torch.argsort(positions)
            row = order[torch.searchsorted(positions[order], index[channel, slot])]
            pos[channel, slot] = a.flatten(2)[row, channel].argmax(dim=1) if a.ndim == 4 else 0
        self.values, self.index, self.position = values, index, pos

    def merge(self, other: TopK) -> TopK:
        """The top-k of the union of both parts' images."""
        if other.k != self.k:
            raise RunError(f"cannot merge top-{self.k} and top-{other.k} states")
        if self.values is None or other.values is None:
            return other if self.values is None else self
        if other.map_shape != self.map_shape or other.values.shape[0] != self.values.shape[0]:
            raise RunError("cannot merge top-k states of layers of different shapes")
        out = TopK(self.k)
        out.map_shape = self.map_shape
        cat = [torch.cat([getattr(self, f).cpu(), getattr(other, f).cpu()], 1) for f in ("values", "index", "position")]
        out.values, out.index, out.position = _select(*cat, self.k)
        return out

    def result(self) -> dict[str, np.ndarray]:
        """``values``, ``index``, ``position`` (F, k', 2 as (y, x)) with k' = min(k, images seen)."""
        if self.values is None:
            return {"values": np.zeros((0, 0)), "index": np.zeros((0, 0), np.int64),
                    "position": np.zeros((0, 0, 2), np.int64)}
        index = self.index.cpu().numpy()
        kept = int((index[0] != EMPTY).sum()) if len(index) else 0
        flat = self.position.cpu().numpy()[:, :kept]
        width = self.map_shape[1] if len(self.map_shape) == 2 else 1
        yx = np.stack([flat // width, flat % width], -1) if len(self.map_shape) == 2 else np.zeros((*flat.shape, 2))
        return {"values": self.values.cpu().numpy()[:, :kept], "index": index[:, :kept],
                "position": yx.astype(np.int64)}

    def state(self) -> dict[str, np.ndarray]:
        if self.values is None:
            return {"k": np.array(self.k), "map_shape": np.zeros(0, np.int64)}
        return {"k": np.array(self.k), "map_shape": np.array(self.map_shape, np.int64),
                "values": self.values.cpu().numpy(), "index": self.index.cpu().numpy(),
                "position": self.position.cpu().numpy()}

    @classmethod
    def from_state(cls, state: dict[str, np.ndarray]) -> TopK:
        out = cls(int(state["k"]))
        if "values" in state:
            out.map_shape = tuple(int(s) for s in state["map_shape"])
            out.values = torch.from_numpy(np.array(state["values"], np.float64))
            out.index = torch.from_numpy(np.array(state["index"], np.int64))
            out.position = torch.from_numpy(np.array(state["position"], np.int64))
        return out
