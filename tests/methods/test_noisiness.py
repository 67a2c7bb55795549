"""Noisiness of weight images: smooth scores low, white noise scores its expected value, scale does not matter."""

from __future__ import annotations

import numpy as np
import pytest

from nnsee.methods.noisiness import (
    high_frequency_share,
    high_frequency_shares,
    noisiness,
    power_spectrum,
    radial_frequency,
    total_variation_ratio,
    total_variation_ratios,
)


def blob(h: int = 28, w: int = 28, sigma: float = 4.0) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    return np.exp(-((y - h / 2) ** 2 + (x - w / 2) ** 2) / (2 * sigma**2))


def direct_power(w: np.ndarray) -> np.ndarray:
    """|DFT|² of the mean-removed image by explicit float64 DFT matrices: F = A v Bᵀ, A[k, m] = e^{-2πi km/H}."""
    h, wd = w.shape
    v = w.astype(np.float64) - w.mean()
    a = np.exp(-2j * np.pi * np.outer(np.arange(h), np.arange(h)) / h)
    b = np.exp(-2j * np.pi * np.outer(np.arange(wd), np.arange(wd)) / wd)
    f = a @ v @ b.T
    return f.real**2 + f.imag**2


def direct_share(w: np.ndarray, cutoff: float) -> float:
    """The share by loops: bin (k, l) has frequency (k/H or k/H − 1, …) cycles/pixel; r = |f| / (1/2)."""
    h, wd = w.shape
    e = direct_power(w)
    high = 0.0
    for k in range(h):
        for m in range(wd):
            fy = k / h if k < (h + 1) // 2 else k / h - 1
            fx = m / wd if m < (wd + 1) // 2 else m / wd - 1
            if np.hypot(fy / 0.5, fx / 0.5) > cutoff:
                high += e[k, m]
    return high / e.sum()


def test_power_spectrum_matches_a_direct_float64_dft() -> None:
    w = np.random.default_rng(0).normal(size=(8, 8)).astype(np.float32)
    np.testing.assert_allclose(power_spectrum(w)[0], direct_power(w), rtol=1e-10, atol=1e-10)
    # Parseval: Σ|F|² = H W Σ v².
    v = w.astype(np.float64) - w.mean()
    assert power_spectrum(w)[0].sum() == pytest.approx(64 * (v**2).sum(), rel=1e-12)
    assert power_spectrum(w)[0][0, 0] == pytest.approx(0.0, abs=1e-10)  # mean removed: no DC energy


@pytest.mark.parametrize("shape", [(8, 8), (7, 9)])
@pytest.mark.parametrize("cutoff", [0.0, 0.25, 0.5, 1.0])
def test_share_matches_the_direct_computation(shape: tuple[int, int], cutoff: float) -> None:
    w = np.random.default_rng(1).normal(size=shape) + blob(*shape, sigma=2.0)
    assert high_frequency_share(w, cutoff) == pytest.approx(direct_share(w, cutoff), rel=1e-10)


def test_radial_frequency_is_distance_from_dc_over_nyquist() -> None:
    r = radial_frequency(8, 8)
    assert r[0, 0] == 0.0
    assert r[4, 0] == pytest.approx(1.0)  # fy = -1/2: Nyquist on the vertical axis
    assert r[0, 2] == pytest.approx(0.5)  # fx = 2/8 = 1/4 cycles per pixel = half of Nyquist
    assert r.max() == pytest.approx(np.sqrt(2))


def test_smooth_images_score_low() -> None:
    assert high_frequency_share(blob()) < 0.01
    assert total_variation_ratio(blob()) < 0.5
    assert high_frequency_share(np.full((28, 28), 3.0)) == 0.0
    assert total_variation_ratio(np.full((28, 28), 3.0)) == 0.0


def test_white_noise_scores_its_expected_value() -> None:
    """For mean-removed white noise every non-DC bin has the same expected energy, so the expected share is
    (non-DC bins with r > cutoff) / (H W − 1), ≈ 1 − π cutoff² / 4 = 0.951 for a large image and cutoff 1/4.
    For TV: E|a − b| = √2 E|a| for i.i.d. Gaussians, and there are 2 (H−1) W differences for H W pixels."""
    h = w = 28
    noise = np.random.default_rng(2).normal(size=(400, 1, h, w))
    r = radial_frequency(h, w)
    expected_share = (r > 0.25).sum() / (h * w - 1)
    assert expected_share == pytest.approx(1 - np.pi * 0.25**2 / 4, abs=0.01)
    assert high_frequency_shares(noise).mean() == pytest.approx(expected_share, abs=0.005)
    expected_tv = np.sqrt(2) * 2 * (h - 1) * w / (h * w)
    assert total_variation_ratios(noise).mean() == pytest.approx(expected_tv, rel=0.02)


def test_invariant_to_scale_and_offset() -> None:
    w = np.random.default_rng(3).normal(size=(1, 12, 12)) + blob(12, 12, 3.0)[None]
    for f in (high_frequency_share, total_variation_ratio):
        assert f(10 * w) == pytest.approx(f(w), rel=1e-12)
        assert f(0.01 * w + 5.0) == pytest.approx(f(w), rel=1e-9)


def test_zero_and_constant_images_score_zero_without_nan() -> None:
    zero = np.zeros((3, 1, 5, 5), np.float32)
    with np.errstate(all="raise"):
        assert high_frequency_share(zero[0]) == 0.0
        assert total_variation_ratio(zero[0]) == 0.0
        assert noisiness(zero) == {
            "high_frequency_share_mean": 0.0,
            "high_frequency_share_median": 0.0,
            "tv_ratio_mean": 0.0,
            "tv_ratio_median": 0.0,
            "cutoff": 0.25,
            "n": 3,
        }


def test_channels_pool_energy_and_tv_within_the_bounds() -> None:
    rng = np.random.default_rng(4)
    rgb = np.stack([blob(10, 10), rng.normal(size=(10, 10)), np.zeros((10, 10))])
    share = high_frequency_share(rgb)
    assert high_frequency_share(rgb[:1]) < share < high_frequency_share(rgb[1:2])
    checker = np.indices((6, 6)).sum(axis=0) % 2 * 2.0 - 1.0  # the noisiest image there is: TV / L1 near 4
    assert total_variation_ratio(checker) == pytest.approx(2 * 5 * 6 * 2 / 36)
    assert 0 <= total_variation_ratios(rng.normal(size=(50, 3, 6, 6))).max() <= 4


def test_noisiness_summarizes_many_images() -> None:
    rng = np.random.default_rng(5)
    smooth = np.stack([blob(16, 16, s)[None] for s in (2.0, 3.0, 4.0)])
    noisy = rng.normal(size=(3, 1, 16, 16))
    a, b = noisiness(smooth), noisiness(noisy)
    assert a["high_frequency_share_mean"] < 0.05 < 0.9 < b["high_frequency_share_mean"]
    assert a["tv_ratio_median"] < b["tv_ratio_median"]
    assert b["n"] == 3 and b["cutoff"] == 0.25
    assert b["high_frequency_share_median"] == pytest.approx(float(np.median(high_frequency_shares(noisy))))


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="shape"):
        noisiness(np.zeros((4, 4)))
    with pytest.raises(ValueError, match="NaN"):
        high_frequency_share(np.full((4, 4), np.nan))
    with pytest.raises(ValueError, match="cutoff"):
        high_frequency_share(np.zeros((4, 4)), cutoff=2.0)
