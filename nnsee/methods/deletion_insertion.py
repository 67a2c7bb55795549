"""Deletion and insertion curves (Petsiuk et al. 2018, "RISE"): does a map rank the pixels the model needs first?

A map orders the pixel positions of an image (one position = every channel of a pixel; its importance is the map
summed over the map's channels, largest first, ties by position). For ``n_s = round(f_s · P)`` positions at each of
the fractions ``f_s = s / S`` (s = 0 … S, P positions):

* deletion: the first ``n_s`` positions in the map's order are set to the baseline x′, the rest keep x;
  ``d_s = softmax(model(x_del))[target]`` falls fast when the map put the needed pixels first (lower area is better);
* insertion: the first ``n_s`` positions keep x, the rest are the baseline; ``i_s`` rises fast for a good map (higher
  area is better).

The area under a curve is the trapezoid rule over the fractions actually used, ``n_s / P`` from 0 to 1 (not over the
step numbers): ``AUC = Σ_s (y_s + y_{s+1}) / 2 · (n_{s+1} − n_s) / P``. A constant curve c has AUC c.
The baseline x′ is 0 in the standardized space the model sees: the training mean image under ``pixel``
standardization, an image's own mean level under ``image``; an "absent" pixel is thus an average one, not black,
which for MNIST-like data (black background) would be no change at all. A random order (``random_curves``: the mean
over R seeded permutations) is the floor a map must beat.
Forwards are batched: chunks of whole curves, at most :data:`MAX_BATCH_VALUES` input values at once, forwarded in
spans the chunk tuner times (:mod:`nnsee.models.chunking`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from nnsee.methods.attribution.target import as_input, target_index
from nnsee.methods.base import MethodError
from nnsee.models.hooks import eval_mode

#: Most input values (images × steps × C × H × W) one forward takes: 2²² floats, 16 MB.
MAX_BATCH_VALUES = 1 << 22
STEPS = 20
MAX_STEPS = 1000


@dataclass(frozen=True)
class Curves:
    """``deletion`` and ``insertion`` (N, S+1): the target's probability at each fraction ``fractions`` (S+1,) of
    the positions removed or revealed; their areas ``deletion_auc``, ``insertion_auc`` (N,)."""

    fractions: np.ndarray
    deletion: np.ndarray
    insertion: np.ndarray
    deletion_auc: np.ndarray
    insertion_auc: np.ndarray

    def summary(self, i: int | None = None) -> dict[str, object]:
        """JSON-ready curves of image ``i`` (None: the mean over the images) and their areas."""
        pick = (lambda a: a.mean(0)) if i is None else (lambda a: a[i])
        return {"fractions": [round(float(f), 6) for f in self.fractions],
                "deletion": [float(v) for v in pick(self.deletion)],
                "insertion": [float(v) for v in pick(self.insertion)],
                "deletion_auc": float(pick(self.deletion_auc)), "insertion_auc": float(pick(self.insertion_auc))}


def auc(fractions: np.ndarray, values: np.ndarray) -> np.ndarray:
    """The trapezoid area under ``values`` (…, S+1) over ``fractions`` (S+1,)."""
    f = np.asarray(fractions, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    return ((v[..., 1:] + v[..., :-1]) / 2 * np.diff(f)).sum(-1)


def counts(positions: int, steps: int = STEPS) -> np.ndarray:
    """``n_s = round(s / S · P)``, s = 0 … S: positions removed (or revealed) at each step (0 and P included)."""
    if not 1 <= steps <= MAX_STEPS:
        raise MethodError(f"steps must be a whole number from 1 to {MAX_STEPS}, got {steps}")
    return np.unique(np.round(np.linspace(0, positions, steps + 1)).astype(np.int64))


def order_from_maps(maps: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Positions (N, H·W) most important first: each map summed over its channels (a layer map is resized to the
    image first by the caller), sorted descending; ties keep the lower position first."""
    m = np.asarray(maps, dtype=np.float64)
    h, w = int(shape[-2]), int(shape[-1])
    if m.ndim == 3:
        m = m[:, None]
    if m.ndim != 4 or m.shape[-2:] != (h, w):
        raise MethodError(f"expected maps (N, C, {h}, {w}) over the image's pixels, got {tuple(np.shape(maps))}")
    score = np.nan_to_num(m.sum(1).reshape(len(m), h * w), nan=-np.inf)
    return np.argsort(-score, axis=1, kind="stable")


def curves(model: nn.Module, x: np.ndarray | torch.Tensor, order: np.ndarray, target: object,
           steps: int = STEPS, baseline: float | np.ndarray = 0.0) -> Curves:
    """Deletion and insertion curves of images ``x`` (N, C, H, W) when positions go in ``order`` (N, H·W), most
    important first; the probability of class ``target`` (one, or one per image)."""
    xt = as_input(x, model)
    n, c, h, w = xt.shape
    p = h * w
    order = np.asarray(order)
    if order.shape != (n, p):
        raise MethodError(f"expected an order of the {p} positions for each of the {n} images, got {order.shape}")
    ks = counts(p, steps)
    rank = np.empty((n, p), dtype=np.int64)
    np.put_along_axis(rank, order, np.arange(p)[None].repeat(n, 0), axis=1)
    rank_t = torch.from_numpy(rank).to(xt.device)
    ks_t = torch.from_numpy(ks).to(xt.device)
    base = torch.as_tensor(np.asarray(baseline, dtype=np.float64), dtype=xt.dtype, device=xt.device)
    base = base.expand(n, c, h, w) if base.ndim <= 3 else base
    with eval_mode(model):
        out_dim = model(xt[:1]).shape[1]
    targets = target_index(target, n, out_dim, xt.device)
    per_image = len(ks) * c * p
    chunk = max(1, MAX_BATCH_VALUES // per_image)
    result = {"deletion": [], "insertion": []}
    with eval_mode(model):
        for start in range(0, n, chunk):
            stop = min(n, start + chunk)
            gone = (rank_t[start:stop, None, :] < ks_t[None, :, None]).reshape(stop - start, len(ks), 1, h, w)
            xs, bs = xt[start:stop, None], base[start:stop, None]
            for name, removed in (("deletion", gone), ("insertion", ~gone)):
                batch = torch.where(removed, bs, xs).reshape(-1, c, h, w)
                prob = _probabilities(model, batch).reshape(stop - start, len(ks), -1)
                chosen = targets[start:stop, None, None].expand(-1, len(ks), 1)
                result[name].append(prob.gather(2, chosen)[..., 0].cpu().numpy())
    fractions = ks / p
    deletion, insertion = np.concatenate(result["deletion"]), np.concatenate(result["insertion"])
    return Curves(fractions, deletion, insertion, auc(fractions, deletion), auc(fractions, insertion))


def _probabilities(model: nn.Module, batch: torch.Tensor) -> torch.Tensor:
    """``softmax(model(batch))`` in float64, forwarded in spans the chunk tuner times (small CNNs run several times
    faster at batches of 8-32 than at the hundreds one curve chunk holds)."""
    from nnsee.models.chunking import FORWARD_ELEMENTS, cap_for, chunk_key, chunks

    shape = tuple(batch.shape[1:])
    key = chunk_key(model, "forward", shape, batch.dtype, batch.device)
    spans = chunks(len(batch), key, cap_for(shape, FORWARD_ELEMENTS), None, batch.device)
    return torch.cat([model(batch[a:b]).double().softmax(1) for a, b in spans])


def deletion_insertion(model: nn.Module, x: np.ndarray | torch.Tensor, maps: np.ndarray, target: object,
                       steps: int = STEPS, baseline: float | np.ndarray = 0.0) -> Curves:
    """The curves of ``x`` (N, C, H, W) with positions in the order of ``maps`` (N, C', H, W), largest first."""
    return curves(model, x, order_from_maps(maps, tuple(np.shape(x))), target, steps, baseline)


def random_curves(model: nn.Module, x: np.ndarray | torch.Tensor, target: object, steps: int = STEPS,
                  baseline: float | np.ndarray = 0.0, repeats: int = 5, seed: int = 0) -> Curves:
    """The curves of ``x`` for random orders: per image, the mean over ``repeats`` permutations drawn from
    ``numpy.random.default_rng(seed)`` (reproducible); the areas are those of the mean curves."""
    if repeats < 1:
        raise MethodError(f"repeats must be at least 1, got {repeats}")
    xt = as_input(x, model)
    n, _, h, w = xt.shape
    rng = np.random.default_rng(seed)
    orders = np.stack([rng.permutation(h * w) for _ in range(n * repeats)])
    targets = np.asarray(target).reshape(-1)
    targets = np.repeat(targets, n) if targets.size == 1 else targets
    many = curves(model, xt.repeat_interleave(repeats, 0), orders, np.repeat(targets, repeats), steps,
                  _repeated(baseline, repeats))
    deletion = many.deletion.reshape(n, repeats, -1).mean(1)
    insertion = many.insertion.reshape(n, repeats, -1).mean(1)
    f = many.fractions
    return Curves(f, deletion, insertion, auc(f, deletion), auc(f, insertion))


def _repeated(baseline: float | np.ndarray, repeats: int) -> float | np.ndarray:
    b = np.asarray(baseline)
    return np.repeat(b, repeats, axis=0) if b.ndim == 4 else baseline
