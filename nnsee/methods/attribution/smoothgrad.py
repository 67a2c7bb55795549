"""SmoothGrad and VarGrad (Smilkov et al. 2017; Adebayo et al. 2018): a gradient map averaged over noisy copies.

For ``n`` noise draws ``ε_s ~ N(0, σ² I)`` and a gradient method ``a`` (saliency by default):

* ``smoothgrad``:    ``(1/n) Σ_s a(x + ε_s)``
* ``smoothgrad_sq``: ``(1/n) Σ_s a(x + ε_s)²``
* ``vargrad``:       ``(1/n) Σ_s a(x + ε_s)² − ((1/n) Σ_s a(x + ε_s))²``

which is Captum's ``NoiseTunnel(method).attribute(x, nt_type=kind, nt_samples=n, stdevs=σ, target=t)`` given the same
noise. The noise level follows the paper: ``σ = noise_level × (max x − min x)`` of each image (0.10–0.20 recommended;
default 0.15); ``stdev=`` gives an absolute σ instead (Captum's ``stdevs``, default 1.0 there). The noise is drawn
from a seeded generator one sample at a time, in float64 on the CPU, so the maps depend neither on how the copies
are batched nor on the model's device and dtype (beyond rounding), and the global random state is left alone.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from nnsee.errors import MethodError, not_one_of
from nnsee.methods.attribution.method import Attribution
from nnsee.methods.attribution.target import as_input
from nnsee.models.chunking import cap_for, chunk_key, chunks

NOISE_TUNNELS = ("smoothgrad", "smoothgrad_sq", "vargrad")
#: the memory bound on a pass: at most this many input elements (16 MiB of float32) of noisy copies; the shared tuner
#: (:mod:`nnsee.models.chunking`) picks how many copies per pass below it from their measured time
CHUNK_ELEMENTS = 1 << 22


def noise_tunnel(base: Callable[..., Attribution], model: nn.Module, x: np.ndarray | torch.Tensor, target: Any,
                 output: str = "logit", kind: str = "smoothgrad", samples: int = 25, noise_level: float = 0.15,
                 stdev: float | None = None, seed: int = 0, noise: np.ndarray | torch.Tensor | None = None,
                 batch_size: int | None = None) -> np.ndarray:
    """Maps (N, C', H, W) of ``base(model, x_noisy, target, output)`` smoothed over ``samples`` noisy copies.

    ``noise``: the perturbations themselves, shape ``(N, samples, C, H, W)`` (then ``noise_level``, ``stdev`` and
    ``seed`` are not used). ``batch_size``: noisy copies of the N inputs per pass of ``base`` (None: the tuner's
    choice, at most ``CHUNK_ELEMENTS`` input elements a pass).
    """
    if kind not in NOISE_TUNNELS:
        raise MethodError(not_one_of("kind", kind, NOISE_TUNNELS))
    if samples < 1:
        raise MethodError(f"samples must be at least 1, got {samples}")
    xt = as_input(x, model)
    n = len(xt)
    targets = np.asarray(target.cpu() if isinstance(target, torch.Tensor) else target).reshape(-1)
    if targets.size == 1:
        targets = np.repeat(targets, n)
    if targets.size != n:
        raise MethodError(f"got {targets.size} targets for {n} inputs: give one class index, or one per input")
    draw = _noise_source(xt, samples, noise_level, stdev, seed, noise)
    key = chunk_key(model, f"noise tunnel:{getattr(base, '__qualname__', base)}", xt.shape, xt.dtype, xt.device)
    total = total_sq = None
    for start, stop in chunks(samples, key, cap_for(xt.shape, CHUNK_ELEMENTS), batch_size, xt.device):
        k = stop - start
        noisy = torch.cat([xt + draw(start + s) for s in range(k)])  # sample-major rows: s * n + i
        maps = base(model, noisy, np.tile(targets, k), output).maps
        maps = torch.as_tensor(maps, dtype=torch.float64).reshape(k, n, *maps.shape[1:])
        part, part_sq = maps.sum(0), (maps * maps).sum(0)
        total = part if total is None else total + part
        total_sq = part_sq if total_sq is None else total_sq + part_sq
    mean, mean_sq = total / samples, total_sq / samples
    smoothed = {"smoothgrad": mean, "smoothgrad_sq": mean_sq, "vargrad": mean_sq - mean * mean}[kind]
    return smoothed.to(xt.dtype).numpy()


def _noise_source(xt: torch.Tensor, samples: int, noise_level: float, stdev: float | None, seed: int,
                  noise: np.ndarray | torch.Tensor | None) -> Callable[[int], torch.Tensor]:
    """``draw(s)``: the perturbation (N, C, H, W) of sample ``s``."""
    if noise is not None:
        given = torch.as_tensor(np.asarray(noise) if not isinstance(noise, torch.Tensor) else noise)
        if tuple(given.shape) != (len(xt), samples, *xt.shape[1:]):
            raise MethodError(f"noise must have shape (N, samples, C, H, W) = {(len(xt), samples, *xt.shape[1:])}, "
                              f"got {tuple(given.shape)}")
        given = given.to(device=xt.device, dtype=xt.dtype)
        return lambda s: given[:, s]
    if stdev is None:
        if not noise_level >= 0:
            raise MethodError(f"noise_level must be a share ≥ 0 of each image's value range, got {noise_level}")
        flat = xt.flatten(1)
        sigma = (noise_level * (flat.amax(1) - flat.amin(1))).reshape(-1, *[1] * (xt.ndim - 1))
    elif not stdev >= 0:
        raise MethodError(f"stdev must be ≥ 0, got {stdev}")
    else:
        sigma = torch.full((len(xt), *[1] * (xt.ndim - 1)), float(stdev), dtype=xt.dtype, device=xt.device)
    generator = torch.Generator().manual_seed(int(seed))
    shape = tuple(xt.shape)
    # drawn in float64 on the CPU whatever the model's dtype and device: the same noise for a float32 copy on a GPU
    return lambda _s: torch.randn(shape, generator=generator, dtype=torch.float64).to(xt.device, xt.dtype) * sigma


def smoothgrad(model: nn.Module, x: np.ndarray | torch.Tensor, target: Any, output: str = "logit",
               base: str = "saliency", kind: str = "smoothgrad", samples: int = 25, noise_level: float = 0.15,
               seed: int = 0) -> Attribution:
    """The registered method: :func:`noise_tunnel` over the registered gradient method ``base``."""
    from nnsee.methods.attribution.registry import METHODS  # the registry lists this method too

    smoothable = [m.name for m in METHODS.values() if "gradients" in m.needs and m.space == "input"
                  and m.name != "smoothgrad"]
    if base not in smoothable:
        raise MethodError(not_one_of("base", base, smoothable))
    maps = noise_tunnel(METHODS[base].run, model, x, target, output, kind=kind, samples=samples,
                        noise_level=noise_level, seed=seed)
    return Attribution("smoothgrad", maps, extras={"base": base, "kind": kind, "samples": samples,
                                                   "noise_level": noise_level, "seed": seed})
