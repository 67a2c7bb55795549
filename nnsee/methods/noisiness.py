"""How noisy a weight image is, as numbers: the high-frequency share of its spectrum and its total variation.

Both measures first remove each channel's mean (a constant offset is not "noise") and are scale invariant
(``w`` and ``10 w`` score the same), so L2's uniform shrinkage alone does not change them: only a change of
*shape* does. An all-zero (or constant) image scores 0.0.

For an image ``w`` of shape (C, H, W), with ``v = w - mean_{H,W}(w)`` per channel:

* **High-frequency share**: ``F = DFT2(v)`` per channel, energy ``E[k, l] = Σ_c |F_c[k, l]|²``. Bin ``(k, l)``
  has frequency ``(f_y, f_x) = (fftfreq(H)[k], fftfreq(W)[l])`` in cycles per pixel (in [-1/2, 1/2)); its
  *normalized radial frequency* is ``r = sqrt((f_y / (1/2))² + (f_x / (1/2))²)``, i.e. the distance from DC in
  units of the Nyquist frequency 1/2 (``r = 1`` at Nyquist on an axis, up to ``√2`` in the corners). The share is
  ``Σ_{r > cutoff} E / Σ E`` in [0, 1]. A smooth image keeps its energy near DC (share near 0); for white noise
  every non-DC bin has the same expected energy, so the share is about the fraction of non-DC bins with
  ``r > cutoff``: ``1 - π cutoff² / 4`` for a large image (≈ 0.95 at the default cutoff 0.25).
* **Total variation ratio**: anisotropic TV over both axes and all channels,
  ``TV = Σ |v[c, i+1, j] - v[c, i, j]| + Σ |v[c, i, j+1] - v[c, i, j]|``, divided by ``‖v‖₁ = Σ |v|``.
  Each pixel enters at most four differences and ``|a - b| ≤ |a| + |b|``, so the ratio lies in [0, 4].
  For i.i.d. Gaussian noise ``E|a - b| = √2 E|a|``, so the ratio is about ``√2 · pairs / pixels``
  (``√2 · 2 (H-1) W / (H W)`` ≈ 2.73 for 28×28); smooth images score far lower.
"""

from __future__ import annotations

from typing import Any

import numpy as np

DEFAULT_CUTOFF = 0.25


def _as_batch(weights: np.ndarray) -> np.ndarray:
    """(H, W) -> (1, 1, H, W); (C, H, W) -> (1, C, H, W); (N, C, H, W) kept; float64, mean removed per channel."""
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim == 2:
        w = w[None, None]
    elif w.ndim == 3:
        w = w[None]
    if w.ndim != 4:
        raise ValueError(f"expected weight images of shape (H, W), (C, H, W) or (N, C, H, W), got {w.shape}")
    if not np.all(np.isfinite(w)):
        raise ValueError("the weight images hold NaN or infinite values; noisiness is defined for finite weights")
    return w - w.mean(axis=(-2, -1), keepdims=True)


def radial_frequency(height: int, width: int) -> np.ndarray:
    """``r[k, l] = sqrt((2 fftfreq(H)[k])² + (2 fftfreq(W)[l])²)``: each FFT bin's distance from DC over Nyquist."""
    fy = 2.0 * np.fft.fftfreq(height)
    fx = 2.0 * np.fft.fftfreq(width)
    return np.sqrt(fy[:, None] ** 2 + fx[None, :] ** 2)


def power_spectrum(weights: np.ndarray) -> np.ndarray:
    """``E[n, k, l] = Σ_c |DFT2(w_nc - mean(w_nc))[k, l]|²`` (float64, FFT bin order) for (H, W)…(N, C, H, W)."""
    v = _as_batch(weights)
    return (np.abs(np.fft.fft2(v, axes=(-2, -1))) ** 2).sum(axis=1)


def high_frequency_shares(weights: np.ndarray, cutoff: float = DEFAULT_CUTOFF) -> np.ndarray:
    """Per image, the share of spectral energy at normalized radial frequency ``r > cutoff`` (module docstring)."""
    if not 0 <= cutoff < np.sqrt(2):
        raise ValueError(f"cutoff is a fraction of the Nyquist frequency in [0, √2), got {cutoff}")
    v = _as_batch(weights)
    energy = (np.abs(np.fft.fft2(v, axes=(-2, -1))) ** 2).sum(axis=1)
    high = radial_frequency(v.shape[-2], v.shape[-1]) > cutoff
    total = energy.sum(axis=(-2, -1))
    flat = total == 0  # a constant image: no shape to measure
    share = (energy * high).sum(axis=(-2, -1)) / np.where(flat, 1.0, total)
    return np.where(flat, 0.0, share)


def total_variation_ratios(weights: np.ndarray) -> np.ndarray:
    """Per image, anisotropic ``TV(v) / ‖v‖₁`` with ``v`` the mean-removed image, in [0, 4] (module docstring)."""
    v = _as_batch(weights)
    tv = np.abs(np.diff(v, axis=-2)).sum(axis=(1, 2, 3)) + np.abs(np.diff(v, axis=-1)).sum(axis=(1, 2, 3))
    l1 = np.abs(v).sum(axis=(1, 2, 3))
    flat = l1 == 0
    return np.where(flat, 0.0, tv / np.where(flat, 1.0, l1))


def high_frequency_share(w: np.ndarray, cutoff: float = DEFAULT_CUTOFF) -> float:
    """The high-frequency share of one image ``w`` (C, H, W) or (H, W): energy above ``cutoff`` × Nyquist."""
    if np.ndim(w) not in (2, 3):
        raise ValueError(f"expected one image of shape (H, W) or (C, H, W), got {np.shape(w)}")
    return float(high_frequency_shares(w, cutoff)[0])


def total_variation_ratio(w: np.ndarray) -> float:
    """The total variation ratio ``TV / ‖·‖₁`` of one mean-removed image ``w`` (C, H, W) or (H, W)."""
    if np.ndim(w) not in (2, 3):
        raise ValueError(f"expected one image of shape (H, W) or (C, H, W), got {np.shape(w)}")
    return float(total_variation_ratios(w)[0])


def noisiness(weights: np.ndarray, cutoff: float = DEFAULT_CUTOFF) -> dict[str, Any]:
    """Mean and median of both measures over N weight images (N, C, H, W); a JSON-safe dict of floats.

    Keys: ``high_frequency_share_mean``, ``high_frequency_share_median``, ``tv_ratio_mean``,
    ``tv_ratio_median``, ``cutoff`` and ``n`` (the number of images).
    """
    w = np.asarray(weights)
    if w.ndim != 4:
        raise ValueError(f"expected weight images of shape (N, C, H, W), got {w.shape}")
    share = high_frequency_shares(w, cutoff)
    tv = total_variation_ratios(w)

    def stat(f: Any, a: np.ndarray) -> float:
        return float(f(a)) if a.size else 0.0

    return {
        "high_frequency_share_mean": stat(np.mean, share),
        "high_frequency_share_median": stat(np.median, share),
        "tv_ratio_mean": stat(np.mean, tv),
        "tv_ratio_median": stat(np.median, tv),
        "cutoff": float(cutoff),
        "n": int(len(w)),
    }
