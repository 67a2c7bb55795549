"""Zeiler & Fergus's invariance curves (their Fig. 5): how the true-class probability and each layer's feature vector
change as one image is translated, scaled or rotated.

The image is transformed in **raw pixel space** (values as stored, in [0, 1]), then standardized as the run's
training data was, so a pixel moved in from outside the image is the image's *background*, not 0 of the standardized
space (which would be the mean pixel): an exact bilinear resampling, ``torch.nn.functional.affine_grid`` +
``grid_sample`` (``align_corners=False``, zero padding) applied to ``x - b`` and ``b`` added back, where ``b`` is the
background of each channel, the median of the image's border pixels. A point ``p`` of the output (pixel
coordinates, origin at the image centre) samples the input at ``A⁻¹ p``:

* ``translate``: a vertical shift by ``t`` pixels (as Z&F's Fig. 5 row 1), ``out[i, j] = in[i - t, j]``: an integer
  ``t`` hits pixel centres exactly, so the resampling is an exact shift;
* ``scale``: a zoom by ``s`` about the centre (``s > 1`` enlarges), ``out(p) = in(p / s)``;
* ``rotate``: a rotation by ``θ`` degrees about the centre, counter-clockwise on screen.

An amount that is the identity (shift 0, scale 1, angle 0) copies the image itself, so its probability and features
are exactly the original's. The distance of layer ``l`` is Z&F's "canonical distance" (the Euclidean distance
between the feature vectors of the transformed and the original image), divided by the original's norm so that
layers of different sizes share one axis: ``d_l(t) = ‖f_l(T_t x) − f_l(x)‖₂ / ‖f_l(x)‖₂`` (0 at the identity; 1 is a
change as large as the features themselves). All transforms of one image go through the model in one forward pass.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from nnsee.errors import MethodError, not_one_of

FAMILIES = ("translate", "scale", "rotate")
UNITS = {"translate": "px", "scale": "×", "rotate": "°"}
IDENTITY = {"translate": 0.0, "scale": 1.0, "rotate": 0.0}


def default_amounts(family: str, side: int, steps: int = 9) -> np.ndarray:
    """Z&F-like ranges: shifts of −8..8 px at 28 px (scaled to ``side``, whole pixels), zooms 0.6..1.4, angles
    −60..60°; ``steps`` amounts each (odd, so the identity is among them)."""
    if family == "translate":
        reach = max(1, round(8 * side / 28))
        return np.unique(np.round(np.linspace(-reach, reach, steps)))
    if family == "scale":
        return np.linspace(0.6, 1.4, steps)
    if family == "rotate":
        return np.linspace(-60.0, 60.0, steps)
    raise MethodError(not_one_of("transform family", family, FAMILIES))


def affine_theta(family: str, amount: float, height: int, width: int) -> torch.Tensor:
    """The (2, 3) ``affine_grid`` matrix of one transform: output → input sampling in normalized coordinates,
    ``D⁻¹ A⁻¹ D`` with ``D = diag(W/2, H/2)`` (pixel units to [−1, 1]), so non-square images rotate rigidly."""
    if family == "translate":
        return torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, -2.0 * amount / height]], dtype=torch.float64)
    if family == "scale":
        if amount <= 0:
            raise MethodError(f"a scale must be above 0, got {amount}")
        return torch.tensor([[1 / amount, 0.0, 0.0], [0.0, 1 / amount, 0.0]], dtype=torch.float64)
    if family == "rotate":
        a = math.radians(amount)  # counter-clockwise on screen (y down): the inverse maps p to R(a) p in (x, -y)
        c, s = math.cos(a), math.sin(a)
        return torch.tensor([[c, -s * height / width, 0.0], [s * width / height, c, 0.0]], dtype=torch.float64)
    raise MethodError(not_one_of("transform family", family, FAMILIES))


def background(image: np.ndarray) -> np.ndarray:
    """The background of each channel of a (C, H, W) image: the median of its border pixels."""
    border = np.concatenate([image[:, 0, :], image[:, -1, :], image[:, 1:-1, 0], image[:, 1:-1, -1]], axis=1)
    return np.median(border, axis=1).astype(np.float32)


def transformed(image: np.ndarray, family: str, amounts: Sequence[float], fill: np.ndarray | None = None) -> np.ndarray:
    """``image`` (C, H, W, raw pixels) under each amount of ``family``: (T, C, H, W) float32; pixels from outside the
    image take ``fill`` per channel (default :func:`background`)."""
    x = np.asarray(image, dtype=np.float32)
    if x.ndim != 3:
        raise MethodError(f"expected one image (C, H, W), got shape {x.shape}")
    c, h, w = x.shape
    b = background(x) if fill is None else np.broadcast_to(np.asarray(fill, np.float32), (c,))
    amounts = [float(a) for a in amounts]
    theta = torch.stack([affine_theta(family, a, h, w) for a in amounts]).float()
    grid = F.affine_grid(theta, [len(amounts), c, h, w], align_corners=False)
    shifted = torch.from_numpy(x - b[:, None, None]).expand(len(amounts), c, h, w)
    out = F.grid_sample(shifted, grid, mode="bilinear", padding_mode="zeros", align_corners=False).numpy()
    out = out + b[None, :, None, None]
    for i, a in enumerate(amounts):
        if a == IDENTITY[family]:
            out[i] = x  # exactly the image
    return out.astype(np.float32)


@dataclass(frozen=True)
class Invariance:
    """One image under one transform family: ``amounts`` (T,), the transformed raw ``images`` (T, C, H, W),
    ``probability`` (T,) of class ``label`` (``original``: the untransformed image's), and per layer the normalized
    distance (T,) to the original's features."""

    family: str
    amounts: np.ndarray
    images: np.ndarray
    probability: np.ndarray
    distances: dict[str, np.ndarray]
    label: int
    original: float


def invariance_curves(model: nn.Module, image: np.ndarray, label: int, *, layers: Sequence[str] = (),
               standardize: Callable[[np.ndarray], np.ndarray] | None = None,
               families: Sequence[str] = FAMILIES, amounts: dict[str, Sequence[float]] | None = None,
               fill: np.ndarray | None = None) -> list[Invariance]:
    """The invariance curves of ``image`` (C, H, W, raw pixels) of class ``label`` under each of ``families``
    (amounts: ``amounts[family]`` or :func:`default_amounts`), read at ``layers`` (dotted names; a layer's output at
    its last call, flattened per image) in one forward pass of the original and every transformed image, each
    standardized by ``standardize`` (the run's, None: as they are)."""
    from nnsee.methods.base import param_of
    from nnsee.models.hooks import capture, eval_mode

    for f in families:
        if f not in FAMILIES:
            raise MethodError(not_one_of("transform family", f, FAMILIES))
    x = np.asarray(image, dtype=np.float32)
    side = x.shape[-1]
    chosen = {f: np.asarray((amounts or {}).get(f, default_amounts(f, side)), dtype=np.float64) for f in families}
    strips = {f: transformed(x, f, chosen[f], fill) for f in families}
    batch = np.concatenate([x[None], *strips.values()])
    if standardize is not None:
        batch = standardize(batch)
    device, dtype = param_of(model)
    with eval_mode(model), ExitStack() as stack:
        seen = {name: stack.enter_context(capture(model, name, clone=True)) for name in dict.fromkeys(layers)}
        logits = model(torch.as_tensor(batch, device=device, dtype=dtype))
    if not 0 <= label < logits.shape[1]:
        raise MethodError(f"class {label} is not one of the model's {logits.shape[1]} outputs")
    p = torch.softmax(logits.double(), dim=1)[:, label].cpu().numpy()
    feats = {name: s.output.reshape(len(batch), -1).double().cpu().numpy() for name, s in seen.items()
             if s.output is not None}
    out, start = [], 1
    for f in families:
        n = len(chosen[f])
        span = slice(start, start + n)
        distances = {}
        for name, a in feats.items():
            norm = np.linalg.norm(a[0])
            d = np.linalg.norm(a[span] - a[0], axis=1)
            distances[name] = d / norm if norm > 0 else np.where(d > 0, np.inf, 0.0)
        out.append(Invariance(f, chosen[f], strips[f], p[span].copy(), distances, int(label), float(p[0])))
        start += n
    return out
