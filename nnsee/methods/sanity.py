"""Sanity check for attribution maps (Adebayo et al. 2018, "Sanity Checks for Saliency Maps"): model-parameter
randomization.

A map that explains what the model learned must change when the learned weights are destroyed. For each method
``m(model, x, target) -> maps (N, …)`` the check compares the maps of the trained model with those of a copy whose
parameters are all re-initialized (each module's ``reset_parameters()``, seeded; the cascading variant randomizes
layers one at a time from the output down, cumulatively). Per image, it reports

* ``spearman``: the Spearman rank correlation of the absolute maps, ``corr(rank|m|, rank|m'|)`` over all map
  elements (average ranks for ties; NaN when a map is constant), as in the paper's Fig. 2 and 4;
* ``spearman_signed``: the same without the absolute value;
* ``ssim``: a structural similarity of the absolute maps summed over channels, each scaled to [0, 1] by its maximum:
  ``(2 μ_a μ_b + C₁)(2 σ_ab + C₂) / ((μ_a² + μ_b² + C₁)(σ_a² + σ_b² + C₂))`` over uniform 7×7 windows (fewer for
  smaller maps), ``C₁ = 0.01²``, ``C₂ = 0.03²``, population (co)variances, averaged over windows. This is a light
  SSIM (no Gaussian window), close to scikit-image's ``structural_similarity`` with ``gaussian_weights=False``.

and the mean over the images. Values near 1 mean the method does *not* depend on the learned weights (an edge
detector applied to the input would score 1.0); plain gradients typically drop near 0.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Mapping

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from nnsee.methods.base import MethodError
from nnsee.models.copying import copy_model

Method = Callable[[nn.Module, np.ndarray | torch.Tensor, object], np.ndarray]
Methods = Mapping[str, Method] | Iterable[str] | None


def map_functions(model: nn.Module, methods: Methods, options: Mapping[str, Mapping[str, object]] | None = None
                  ) -> dict[str, Method]:
    """``{name: m(model, x, target) -> maps}``: the given functions, or registered methods by name (None: every
    registered method that applies to ``model``), each with its default options updated by ``options[name]`` and
    the logit as output."""
    from nnsee.methods.attribution.registry import applicable, get_method

    if isinstance(methods, Mapping):
        return dict(methods)
    chosen = applicable(model) if methods is None else {name: get_method(name) for name in methods}
    options = options or {}
    return {name: (lambda m, o: lambda model, x, target: m.attribute(model, x, target, **o).maps)(
                method, dict(options.get(name, {})))
            for name, method in chosen.items()}


def one_by_one(method: Method) -> Method:
    """``method`` run on one image at a time, the maps stacked: the same maps (every registered method maps each
    image on its own) with the working set of one image, e.g. ResNet-18 at 224 px."""
    def run(model: nn.Module, x: np.ndarray | torch.Tensor, target: object) -> np.ndarray:
        targets = np.asarray(target).reshape(-1)
        targets = np.repeat(targets, len(x)) if targets.size == 1 else targets
        return np.concatenate([np.asarray(method(model, x[i : i + 1], targets[i : i + 1])) for i in range(len(x))])

    return run


def ranks(a: np.ndarray) -> np.ndarray:
    """Ranks 0 … n−1 of the flattened ``a``, tied values sharing their average rank."""
    a = np.asarray(a).ravel()
    order = np.argsort(a, kind="stable")
    s = a[order]
    new = np.r_[True, s[1:] != s[:-1]]
    starts = np.flatnonzero(new)
    ends = np.r_[starts[1:], len(a)]
    out = np.empty(len(a), dtype=np.float64)
    out[order] = ((starts + ends - 1) / 2.0)[np.cumsum(new) - 1]
    return out


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of two arrays of the same size (NaN if either is constant)."""
    ra, rb = ranks(a), ranks(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denom = np.sqrt((ra * ra).sum() * (rb * rb).sum())
    return float((ra * rb).sum() / denom) if denom > 0 else float("nan")


def ssim(a: np.ndarray, b: np.ndarray, window: int = 7) -> float:
    """The light SSIM of the module doc between two maps (C, H, W) or (H, W): |·| summed over channels, ÷ max."""
    def prep(m: np.ndarray) -> torch.Tensor:
        m = np.abs(np.asarray(m, dtype=np.float64))
        m = m.reshape(-1, *m.shape[-2:]).sum(axis=0)
        top = m.max()
        return torch.from_numpy(m / top if top > 0 else m)[None, None]

    x, y = prep(a), prep(b)
    w = max(1, min(window, x.shape[-1], x.shape[-2]))

    def mean(t: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(t, w, stride=1)

    mx, my = mean(x), mean(y)
    vx, vy, cxy = mean(x * x) - mx * mx, mean(y * y) - my * my, mean(x * y) - mx * my
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return float(s.mean())


def randomized(model: nn.Module, seed: int = 0, layers: list[str] | None = None) -> nn.Module:
    """A copy of ``model`` with the parameters of ``layers`` (default: every module, output first) re-initialized
    by their ``reset_parameters()`` in that order, seeded; the global RNG is left as it was. The copy is in eval mode
    (:func:`~nnsee.models.copying.copy_model`: deepcopy, or module by module for a torch.export graph).
    """
    work = copy_model(model)
    modules = dict(work.named_modules())
    names = layers if layers is not None else list(modules)[::-1]
    reset = 0
    # a CUDA model's weights are drawn by that GPU's generator, which manual_seed also seeds: restore it too
    gpus = sorted({p.device.index or 0 for p in work.parameters() if p.device.type == "cuda"})
    with torch.random.fork_rng(devices=gpus):
        torch.manual_seed(seed)
        for name in names:
            m = modules[name]
            if hasattr(m, "reset_parameters") and any(True for _ in m.parameters(recurse=False)):
                m.reset_parameters()
                reset += 1
    if layers is None and reset == 0:
        raise MethodError("the model has no modules with reset_parameters(); nothing to randomize")
    return work.eval()


def _compare(trained: np.ndarray, other: np.ndarray) -> dict[str, float]:
    trained, other = np.asarray(trained), np.asarray(other)
    if trained.shape != other.shape:
        raise MethodError(f"the method gave maps of shape {trained.shape} and then {other.shape}")
    per = [(spearman(np.abs(t), np.abs(o)), spearman(t, o), ssim(t, o)) for t, o in zip(trained, other, strict=True)]
    with warnings.catch_warnings():  # a score undefined on every image (constant maps) stays NaN, without a warning
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(np.array(per, dtype=np.float64), axis=0) if per else [np.nan] * 3
    return {"spearman": float(mean[0]), "spearman_signed": float(mean[1]), "ssim": float(mean[2])}


def randomization_check(model: nn.Module, x: np.ndarray | torch.Tensor, target: object,
                        methods: Methods = None, seed: int = 0,
                        options: Mapping[str, Mapping[str, object]] | None = None,
                        per_image: bool = False) -> dict[str, dict[str, float]]:
    """``{method: {"spearman", "spearman_signed", "ssim"}}`` between maps of the trained and fully randomized model.

    ``x`` is a batch (N, C, H, W); ``target`` is passed to each method as is; ``methods`` are functions returning
    maps (N, …) or registered names (see :func:`map_functions`; None: every registered method that applies), whose
    ``options`` (``{name: {option: value}}``) replace their defaults. ``per_image`` runs every method on one image
    at a time (:func:`one_by_one`; ``target`` then one class or one per image).
    """
    methods = map_functions(model, methods, options)
    if per_image:
        methods = {name: one_by_one(m) for name, m in methods.items()}
    rand = randomized(model, seed)
    return {name: _compare(m(model, x, target), m(rand, x, target)) for name, m in methods.items()}


def cascading_randomization(model: nn.Module, x: np.ndarray | torch.Tensor, target: object,
                            methods: Methods = None, seed: int = 0) -> dict[str, dict[str, dict[str, float]]]:
    """``{method: {layer: scores}}``: layers with parameters randomized cumulatively from the output layer down
    (the paper's cascading randomization); the key ``layer`` means "this layer and every one above it"."""
    methods = map_functions(model, methods)
    layers = [n for n, m in model.named_modules() if n and any(True for _ in m.parameters(recurse=False))]
    trained = {name: m(model, x, target) for name, m in methods.items()}
    out: dict[str, dict[str, dict[str, float]]] = {name: {} for name in methods}
    for i in range(len(layers) - 1, -1, -1):
        rand = randomized(model, seed, layers[i:][::-1])  # the top layer first: the same values at every step
        for name, m in methods.items():
            out[name][layers[i]] = _compare(trained[name], m(rand, x, target))
    return out
