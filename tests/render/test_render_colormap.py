"""Colormap: centre for zero, marked NaN, scale 0, ±inf, grayscale and RGB weights, symmetric scale."""

from __future__ import annotations

import numpy as np
import pytest

from nnsee.render import (
    NAN_RGB,
    centre_rgb,
    gray_to_rgb,
    rgb_signed_to_rgb,
    signed_lut,
    signed_to_rgb,
    symmetric_scale,
)


def test_lut_is_256_uint8_and_diverging() -> None:
    lut = signed_lut()
    assert lut.shape == (256, 3) and lut.dtype == np.uint8
    assert lut[0, 2] > lut[0, 0]  # blue end
    assert lut[-1, 0] > lut[-1, 2]  # red end
    assert not lut.flags.writeable


@pytest.mark.parametrize("scale", [0.0, 1.0, 1e-12, float("nan"), float("inf")])
def test_all_zero_renders_the_centre_not_blue(scale: float) -> None:
    rgb = signed_to_rgb(np.zeros((5, 7)), scale)
    assert rgb.shape == (5, 7, 3) and rgb.dtype == np.uint8
    assert (rgb == np.array(centre_rgb(), dtype=np.uint8)).all()
    r, g, b = centre_rgb()
    assert min(r, g, b) > 200 and max(r, g, b) - min(r, g, b) < 10  # neutral light grey, not blue
    assert centre_rgb() != tuple(signed_lut()[0])


def test_single_nan_marks_only_that_pixel() -> None:
    v = np.linspace(-1, 1, 25).reshape(5, 5)
    ref = signed_to_rgb(v, 1.0)
    v[2, 3] = np.nan
    rgb = signed_to_rgb(v, symmetric_scale(v))
    assert tuple(rgb[2, 3]) == NAN_RGB
    mask = np.ones((5, 5), bool)
    mask[2, 3] = False
    assert (rgb[mask] == ref[mask]).all()
    assert NAN_RGB not in {tuple(c) for c in signed_lut()}


def test_constant_map_scale_zero() -> None:
    v = np.full((4, 4), 3.0)
    rgb = signed_to_rgb(v, symmetric_scale(np.zeros(3)))
    assert (rgb == np.array(centre_rgb(), dtype=np.uint8)).all()
    # a constant non-zero map with its own scale is the red extreme everywhere, without error
    assert (signed_to_rgb(v, symmetric_scale(v)) == signed_lut()[-1]).all()


@pytest.mark.parametrize("scale", [1.0, 0.0])
def test_infinities_go_to_the_extremes(scale: float) -> None:
    rgb = signed_to_rgb(np.array([[np.inf, -np.inf, 0.0]]), scale)
    lut = signed_lut()
    assert (rgb[0, 0] == lut[-1]).all() and (rgb[0, 1] == lut[0]).all()
    assert tuple(rgb[0, 2]) == centre_rgb()


def test_values_beyond_scale_are_clipped_and_sign_matters() -> None:
    rgb = signed_to_rgb(np.array([[-5.0, -1.0, 1.0, 5.0]]), 1.0)
    lut = signed_lut()
    assert (rgb[0, 0] == lut[0]).all() and (rgb[0, 1] == lut[0]).all()
    assert (rgb[0, 2] == lut[-1]).all() and (rgb[0, 3] == lut[-1]).all()
    assert (signed_to_rgb(np.array([[-2.0, 2.0]]), -2.0) == signed_to_rgb(np.array([[-2.0, 2.0]]), 2.0)).all()


def test_signed_to_rgb_rejects_non_2d() -> None:
    with pytest.raises(ValueError, match="2-D"):
        signed_to_rgb(np.zeros((1, 2, 2)), 1.0)


def test_gray_to_rgb() -> None:
    rgb = gray_to_rgb(np.array([[0.0, 0.5, 1.0, 2.0, np.nan]]))
    assert rgb[0, :4, 0].tolist() == [0, 128, 255, 255]
    assert (rgb[0, :4, 0] == rgb[0, :4, 1]).all()
    assert tuple(rgb[0, 4]) == NAN_RGB
    assert gray_to_rgb(np.ones((2, 2)), vmin=1, vmax=1).max() == 0  # degenerate range: no error


def test_rgb_signed_to_rgb() -> None:
    w = np.zeros((3, 2, 2))
    w[0, 0, 0] = 1.0  # favours red
    w[2, 1, 1] = np.nan
    rgb = rgb_signed_to_rgb(w, 1.0)
    assert rgb.shape == (2, 2, 3)
    assert tuple(rgb[0, 0]) == (255, 128, 128)
    assert tuple(rgb[0, 1]) == (128, 128, 128)
    assert tuple(rgb[1, 1]) == NAN_RGB
    assert (rgb_signed_to_rgb(np.ones((3, 2, 2)), 0.0) == 128).all()
    with pytest.raises(ValueError):
        rgb_signed_to_rgb(np.zeros((1, 2, 2)), 1.0)


def test_symmetric_scale() -> None:
    assert symmetric_scale(np.array([1.0, -3.0, np.nan, np.inf])) == 3.0
    assert symmetric_scale([np.zeros(2), np.array([0.5]), np.array([-2.0])]) == 2.0
    assert symmetric_scale(np.array([np.nan])) == 0.0
    assert symmetric_scale([]) == 0.0
    assert symmetric_scale([np.zeros((0, 3))]) == 0.0
