"""Input standardization, fitted on training images only and stored with the run.

Modes, for an image ``x`` with ``D = C * H * W`` values:

* ``image``: ``x' = (x - mean(x)) / s`` with ``s = ||x - mean(x)|| / sqrt(D)``, so every image has mean 0 and
  norm ``sqrt(D)`` (unit RMS: equal magnitude, values of order 1). A constant image (``s = 0``) becomes all zeros.
  Nothing is fitted.
* ``pixel``: ``x' = (x - mu) / sigma`` per pixel, ``mu`` and ``sigma`` (population std) over the training images.
  Pixels with ``sigma < 1e-8`` (constant in training, e.g. MNIST's border) get ``sigma = 1``: they map to
  ``x - mu`` (0 on training data) instead of dividing by zero.
* ``none``: ``x' = x``.
* ``normalize`` (adopted models, :func:`parse_normalize`): the torchvision convention, ``x' = (x - m_c) / s_c`` per
  channel ``c`` on pixels in 0..1, with the model's own ``m`` and ``s`` (``imagenet``: m = 0.485, 0.456, 0.406,
  s = 0.229, 0.224, 0.225). Nothing is fitted.
"""

from __future__ import annotations

import base64
import os
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np

from nnsee.errors import DataError, not_one_of

if TYPE_CHECKING:
    from nnsee.data.lazy import LazyImages

MODES = ("image", "pixel", "none")  # what training fits (``nnsee train --standardize``)
NORMALIZE = "normalize"  # fixed per-channel statistics given with an adopted model
#: Named per-channel (mean, std) of ``--normalize``: torchvision's ImageNet statistics.
NORMALIZE_PRESETS = {"imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))}
_STD_FLOOR = 1e-8
_CHUNK = 256  # images standardized at a time in image mode (28 px: 1.6 MB of float64, in cache)
_LIST_LIMIT = 4096  # arrays up to this many values are stored as JSON lists, larger ones as base64 float32


def _encode(a: np.ndarray) -> dict[str, Any]:
    a = np.ascontiguousarray(a, dtype=np.float32)
    if a.size <= _LIST_LIMIT:  # shortest float32 repr: compact, and float32(float(text)) round-trips exactly
        return {"shape": list(a.shape), "values": [float(str(v)) for v in a.ravel()]}
    return {"shape": list(a.shape), "float32_le_base64": base64.b64encode(a.astype("<f4").tobytes()).decode("ascii")}


def _decode(d: dict[str, Any]) -> np.ndarray:
    if "values" in d:
        a = np.asarray(d["values"], dtype=np.float32)
    else:
        a = np.frombuffer(base64.b64decode(d["float32_le_base64"]), dtype="<f4").astype(np.float32)
    return a.reshape(d["shape"])


def _same(a: np.ndarray | None, b: np.ndarray | None) -> bool:
    return (a is None and b is None) or (a is not None and b is not None and np.array_equal(a, b))


class Standardizer:
    """Standardize images by ``mode`` (``image``, ``pixel`` or ``none``; math in the module docstring)."""

    def __init__(self, mode: str = "image") -> None:
        if mode not in (*MODES, NORMALIZE):
            raise DataError(not_one_of("standardize mode", mode, (*MODES, NORMALIZE)))
        self.mode = mode
        self.mean: np.ndarray | None = None  # pixel mode: (C, H, W)
        self.std: np.ndarray | None = None
        self.n_fit = 0

    @classmethod
    def normalize(cls, mean: Any, std: Any) -> Standardizer:
        """``x' = (x - mean_c) / std_c`` per channel (``normalize`` mode): ``mean`` and ``std`` one number a channel,
        finite, ``std > 0``."""
        m, s = (np.asarray(v, dtype=np.float64).ravel() for v in (mean, std))
        if m.size == 0 or m.shape != s.shape or not (np.isfinite(m).all() and np.isfinite(s).all()) or (s <= 0).any():
            raise DataError(f"normalize needs one finite mean and one std > 0 per channel, got mean {m.tolist()} and "
                            f"std {s.tolist()}")
        out = cls(NORMALIZE)
        out.mean, out.std = m.astype(np.float32), s.astype(np.float32)
        return out

    def _channel_stats(self, channels: int) -> tuple[np.ndarray, np.ndarray]:
        if self.mean is None or self.std is None:
            raise DataError("Standardizer('normalize') needs its per-channel mean and std: use Standardizer.normalize")
        if self.mean.size != channels:
            raise DataError(f"expected images of {self.mean.size} channels for this normalization, got {channels}")
        return self.mean[:, None, None], self.std[:, None, None]

    def fit(self, images: np.ndarray | LazyImages) -> Standardizer:
        """Fit on the training images (N, C, H, W), an array or a streamed set; only ``pixel`` mode keeps
        statistics (a streamed set is read twice, chunk by chunk: :func:`_streamed_mean_std`)."""
        lazy = not isinstance(images, np.ndarray) and hasattr(images, "chunks")
        if not lazy:
            images = np.asarray(images)
        if images.ndim != 4 or len(images) == 0:
            raise DataError(f"Standardizer.fit needs training images of shape (N, C, H, W), got {images.shape}")
        self.n_fit = len(images)
        if self.mode == "pixel":
            if lazy:
                mean, std, self.n_fit = _streamed_mean_std(images)
            else:
                x = images.astype(np.float64)
                mean, std = x.mean(axis=0), x.std(axis=0)
            self.mean = mean.astype(np.float32)
            self.std = np.where(std < _STD_FLOOR, 1.0, std).astype(np.float32)
        return self

    def _check(self, images: np.ndarray) -> np.ndarray:
        images = np.asarray(images, dtype=np.float32)
        if images.ndim < 3:
            raise DataError(f"expected images of shape (N, C, H, W) or (C, H, W), got {images.shape}")
        if self.mode == "pixel":
            if self.mean is None or self.std is None:
                raise DataError("Standardizer('pixel') must be fit on the training images before use")
            if images.shape[-3:] != self.mean.shape:
                raise DataError(
                    f"expected images of shape {tuple(self.mean.shape)} like the training data, got "
                    f"{tuple(images.shape[-3:])}"
                )
        return images

    def image_stats(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per-image ``(mean(x), s)`` of ``image`` mode, over the last three axes (``s = 0`` for constant images)."""
        mean, scale, _ = _centred_stats(self._check(images))
        return mean, scale

    def transform(self, images: np.ndarray) -> np.ndarray:
        """Standardized float32 copy of ``images`` ((N, C, H, W) or one (C, H, W)); the input is not modified."""
        x = self._check(images)
        if self.mode == "none":
            return x.copy()
        if self.mode == "pixel":
            return ((x - self.mean) / self.std).astype(np.float32)
        if self.mode == NORMALIZE:
            mean, std = self._channel_stats(x.shape[-3])
            return ((x - mean) / std).astype(np.float32)
        if x.ndim == 3:
            return self._standardize_images(x)
        # Chunks of images keep the float64 temporaries small and in cache; every image is computed alone anyway,
        # so chunks run on two threads (numpy releases the GIL) with the same bytes as one by one.
        out = np.empty(x.shape, dtype=np.float32)

        def fill(start: int) -> None:
            out[start : start + _CHUNK] = self._standardize_images(x[start : start + _CHUNK])

        starts = range(0, len(x), _CHUNK)
        if len(starts) < 4:
            for start in starts:
                fill(start)
        else:
            list(_pool().map(fill, starts))
        return out

    def _standardize_images(self, x: np.ndarray) -> np.ndarray:
        mean, scale, centred = _centred_stats(x)
        tiny = scale <= 1e-12 * np.maximum(1.0, np.abs(mean))  # constant image, up to rounding
        centred /= np.where(tiny, 1.0, scale)  # the centred float64 copy is divided in place: no second copy
        if tiny.any():
            centred[np.broadcast_to(tiny, centred.shape)] = 0.0
        return centred.astype(np.float32)

    def inverse(
        self, images: np.ndarray, mean: np.ndarray | None = None, scale: np.ndarray | None = None
    ) -> np.ndarray:
        """Map standardized images back to input units, for display.

        ``pixel``: ``x = x' * sigma + mu``; ``none``: identity. ``image`` mode keeps no per-image statistics, so
        with ``mean`` and ``scale`` (from ``image_stats``) it is exact, ``x = x' * s + mean``; without them each
        image is rescaled to [0, 1] by its own min and max (a constant image becomes 0.5).
        """
        x = self._check(images)
        if self.mode == "none":
            return x.copy()
        if self.mode == "pixel":
            return (x * self.std + self.mean).astype(np.float32)
        if self.mode == NORMALIZE:
            m, s = self._channel_stats(x.shape[-3])
            return (x * s + m).astype(np.float32)
        if mean is not None and scale is not None:
            return (x * scale + mean).astype(np.float32)
        lo = x.min(axis=(-3, -2, -1), keepdims=True)
        hi = x.max(axis=(-3, -2, -1), keepdims=True)
        span = hi - lo
        return np.where(span > 0, (x - lo) / np.where(span > 0, span, 1.0), 0.5).astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe description that ``from_dict`` turns back into an equal Standardizer."""
        d: dict[str, Any] = {"mode": self.mode, "n_fit": self.n_fit}
        if self.mode == "pixel" and self.mean is not None and self.std is not None:
            d["mean"], d["std"] = _encode(self.mean), _encode(self.std)
        if self.mode == NORMALIZE and self.mean is not None and self.std is not None:
            d["mean"], d["std"] = [float(str(v)) for v in self.mean], [float(str(v)) for v in self.std]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Standardizer:
        """The Standardizer that ``to_dict`` described."""
        try:
            if d["mode"] == NORMALIZE:
                return cls.normalize(d["mean"], d["std"])
            s = cls(d["mode"])
            s.n_fit = int(d.get("n_fit", 0))
            if s.mode == "pixel" and "mean" in d:
                s.mean, s.std = _decode(d["mean"]), _decode(d["std"])
        except (KeyError, TypeError, ValueError) as e:
            raise DataError(f"standardization record is malformed ({type(e).__name__}: {e}): {str(d)[:200]}") from e
        return s

    def describe(self) -> str:
        """One line for humans."""
        if self.mode == "none":
            return "none: raw pixel values"
        if self.mode == NORMALIZE:
            return (f"normalize: per channel (x - mean) / std on 0..1 pixels, mean {_floats(self.mean)}, "
                    f"std {_floats(self.std)}")
        if self.mode == "image":
            return "image: each image shifted to mean 0 and scaled to norm sqrt(D) (RMS 1)"
        if self.mean is None or self.std is None:
            return "pixel: per-pixel mean/std (not fitted yet)"
        return (
            f"pixel: per-pixel mean/std over {self.n_fit:,} training images (mean {float(self.mean.mean()):.3g}, "
            f"std {float(self.std.min()):.3g}..{float(self.std.max()):.3g})"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Standardizer):
            return NotImplemented
        return self.mode == other.mode and _same(self.mean, other.mean) and _same(self.std, other.std)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Standardizer({self.mode!r})"


def _streamed_mean_std(images: LazyImages) -> tuple[np.ndarray, np.ndarray, int]:
    """Per-pixel float64 mean and population std of a streamed set, and how many images were read (unreadable ones
    are left out), in two passes over chunks. Each image is added to a float64 sum in data-set order, the way numpy
    reduces an array over its first axis, so the result equals ``x.mean(0)`` and ``x.std(0)`` of the whole array."""
    total, n = np.zeros(images.shape[1:], dtype=np.float64), 0
    for x, _, _ in images.chunks():
        for image in x:
            total += image
        n += len(x)
    if n == 0:
        raise DataError(f"Standardizer.fit: none of the {len(images):,} training images could be read")
    mean = total / n
    squares = np.zeros_like(total)
    for x, _, _ in images.chunks():
        centred = x.astype(np.float64)
        centred -= mean
        centred *= centred
        for image in centred:
            squares += image
    return mean, np.sqrt(squares / n), n


def _floats(values: np.ndarray | None) -> str:
    return "?" if values is None else ", ".join(f"{float(v):.4g}" for v in values)


def parse_normalize(text: str, channels: int) -> Standardizer:
    """``--normalize``: ``none`` (raw 0..1 pixels), a preset (``imagenet``) or ``M1,M2,M3/S1,S2,S3`` (one mean and
    one std per channel), as a :class:`Standardizer` for images of ``channels`` channels."""
    key = text.strip().lower()
    if key == "none":
        return Standardizer("none")
    if key in NORMALIZE_PRESETS:
        mean, std = NORMALIZE_PRESETS[key]
    else:
        head, sep, tail = key.partition("/")
        try:
            mean, std = [float(v) for v in head.split(",")], [float(v) for v in tail.split(",")]
        except ValueError:
            mean = std = ()
        if not sep or not mean:
            raise DataError(f"--normalize takes none, {', '.join(NORMALIZE_PRESETS)} or "
                            f"MEAN1,MEAN2,MEAN3/STD1,STD2,STD3 (one mean and one std per channel, for pixels in 0..1), "
                            f"got {text[:80]!r}")
    if len(mean) != channels or len(std) != channels:
        raise DataError(f"--normalize {text[:80]!r} gives {len(mean)} means and {len(std)} stds, the model takes "
                        f"{channels} channel{'s' if channels != 1 else ''}: give one of each per channel")
    return Standardizer.normalize(mean, std)


def _centred_stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(mean, s, x − mean)`` per image over the last three axes, in float64: ``s = sqrt(Σ (x − mean)² / D)``."""
    d = x.shape[-3] * x.shape[-2] * x.shape[-1]
    mean = x.mean(axis=(-3, -2, -1), keepdims=True, dtype=np.float64)
    centred = x.astype(np.float64)
    centred -= mean
    scale = np.sqrt(np.sum(centred * centred, axis=(-3, -2, -1), keepdims=True) / d)
    return mean, scale, centred


def _pool() -> ThreadPoolExecutor:
    """Two threads for standardizing chunks of images side by side, kept for the process. A forked child (a
    DataLoader worker) has none of its parent's threads, so it makes its own."""
    return _pool_of(os.getpid())


@lru_cache(maxsize=1)
def _pool_of(pid: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=2, thread_name_prefix="nnsee-standardize")
