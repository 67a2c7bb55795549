"""Occlusion: Captum's semantics number for number, and the paper's three maps on hand-weighted models."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from attribution.cnn_models import (
    RegionSum,
    assert_captum_close,
    functional_cnn,
    random_cnn,
    random_images,
    softmax_wrapped,
)

from nnsee.methods.attribution.occlusion import occlusion, occlusion_batch_size, occlusion_grid
from nnsee.methods.attribution.occlusion_paper import occlusion_maps
from nnsee.methods.base import MethodError

captum_attr = pytest.importorskip("captum.attr")


def expit(z):
    return 1 / (1 + np.exp(-np.asarray(z, dtype=np.float64)))


def captum_occlusion(model, x, target, window, stride, baseline=0.0):
    return captum_attr.Occlusion(model).attribute(x, window, strides=stride, baselines=baseline, target=target,
                                                  perturbations_per_eval=64)


# window and stride as nnsee takes them, then as Captum takes them (channel axis included)
CASES = [
    ((3, 3), 2, (3, 3, 3), 2),  # 10×10 with window 3, stride 2: positions 0, 2, 4, 6, 8; the last one cut off
    ((3, 3), (1, 2), (3, 3, 3), (1, 1, 2)),
    (4, 3, (3, 4, 4), 3),  # an int window means all channels, k × k
    ((1, 3, 3), (1, 2, 1), (1, 3, 3), (1, 2, 1)),  # a window over one channel at a time
    ((2, 10, 3), (1, 1, 2), (2, 10, 3), (1, 1, 2)),  # whole columns of 2 channels
]


@pytest.mark.parametrize("recompute", ["region", "full"])
@pytest.mark.parametrize("window,stride,captum_window,captum_stride", CASES)
def test_occlusion_equals_captum_on_rgb(window, stride, captum_window, captum_stride, recompute):
    model = random_cnn((3, 10, 10))
    x, target = random_images(3, (3, 10, 10)), [0, 3, 2]
    ref = captum_occlusion(model, x, target, captum_window, captum_stride)
    ours = occlusion(model, x, target, window=window, stride=stride, batch_size=13, recompute=recompute)
    assert ours.dtype == np.float64  # the model's
    assert_captum_close(ours, ref)


@pytest.mark.parametrize("baseline", [0.0, 0.7, "image"])
def test_occlusion_equals_captum_on_grayscale_with_baselines(baseline):
    model = random_cnn((1, 10, 10), hidden=5)
    x = random_images(2, (1, 10, 10))
    if baseline == "image":
        baseline = random_images(1, (1, 10, 10), seed=5)
    ref = captum_occlusion(model, x, 1, (1, 3, 3), (1, 2, 2), baseline)
    b = baseline[0].numpy() if isinstance(baseline, torch.Tensor) else baseline
    assert_captum_close(occlusion(model, x, 1, window=(3, 3), stride=2, baseline=b), ref)


def test_occlusion_float32_softmax_and_functional_relus():
    model = random_cnn((1, 12, 12), dtype=torch.float32)
    x = random_images(4, (1, 12, 12), dtype=torch.float32)
    ref = captum_occlusion(model, x, [1, 0, 3, 2], (1, 5, 5), (1, 3, 2))
    assert_captum_close(occlusion(model, x, [1, 0, 3, 2], window=5, stride=(3, 2)), ref)
    ref = captum_occlusion(softmax_wrapped(model), x, 2, (1, 4, 4), (1, 4, 4))
    assert_captum_close(occlusion(model, x, 2, window=4, stride=4, output="softmax"), ref)
    model = functional_cnn(c=3)
    x = random_images(2, (3, 8, 8))
    assert_captum_close(occlusion(model, x, 1, window=3, stride=2), captum_occlusion(model, x, 1, (3, 3, 3), 2))


def test_occlusion_grid_and_chunk_rule():
    grid = occlusion_grid((1, 10, 10), (3, 3), (1, 2))
    assert grid.shape == (1, 8, 5)  # ceil((10 − 3)/1) + 1 = 8 rows, ceil((10 − 3)/2) + 1 = 5 columns
    assert grid.starts[2].tolist() == [0, 2, 4, 6, 8]
    assert grid.masks[2][-1].tolist() == [False] * 8 + [True, True]  # the last window is cut off
    assert grid.count()[0, 0].tolist() == [1, 1, 2, 1, 2, 1, 2, 1, 2, 1]
    assert occlusion_batch_size((1, 28, 28)) == 32
    assert occlusion_batch_size((3, 128, 128)) == 4


def test_chunking_does_not_change_occlusion_and_train_mode_is_kept():
    model = random_cnn().train()
    x = random_images(2, (1, 10, 10))
    runs = [occlusion(model, x, 0, window=3, stride=2, batch_size=b, recompute=r)
            for b in (1, 7, 1000) for r in ("region", "full")]
    for r in runs[1:]:
        np.testing.assert_allclose(r, runs[0], rtol=1e-6, atol=1e-7)
    assert model.training


def test_occlusion_errors():
    model, x = random_cnn(), random_images(1, (1, 10, 10))
    with pytest.raises(MethodError, match=r"the occlusion window \(1, 11, 3\) .* is larger than the images"):
        occlusion(model, x, 0, window=(11, 3))
    with pytest.raises(MethodError, match="the stride .* exceeds the window .* along axis W"):
        occlusion(model, x, 0, window=(3, 3), stride=(1, 4))
    with pytest.raises(MethodError, match="window must be a positive int, .h, w. or .channels, h, w., got"):
        occlusion(model, x, 0, window=(0, 3))
    with pytest.raises(MethodError, match="batch_size must be at least 1"):
        occlusion(model, x, 0, batch_size=0)


# --------------------------------------------------------------------------- Zeiler & Fergus Fig. 7 maps


def test_paper_maps_on_a_region_sum_model():
    # Class 0's logit is the sum of rows 2–3 × columns 2–3 of a 6×6 image; class 1's is the constant 2.5.
    # A 4×4 occluder with stride 3 sits at rows/columns 0 (covering 0–3) and 3 (covering 3–5, cut off at the
    # border). It hides 2 of the region's rows at position 0 and 1 at position 3, so for the all-ones image it
    # hides 2·2 = 4, 2·1 = 2, 1·2 = 2, 1·1 = 1 region pixels: z0 = 4 − hidden = 0, 2, 2, 3 and
    # p(class 0) = σ(z0 − 2.5): class 1 wins unless only one pixel is hidden.
    # The layer `conv` is (x, −x): for the ones image its strongest map is channel 0 (max 1 > −1), whose total
    # activity is 36 minus the hidden pixels, 36 − 16, 36 − 12, 36 − 12, 36 − 9. For the image of −1s
    # (true class 1) it is channel 1, with the same totals, and p(class 1) = σ(2.5 + 4 − hidden).
    model = RegionSum((2, 4, 2, 4), other=2.5)
    x = np.stack([np.ones((1, 6, 6)), -np.ones((1, 6, 6))]).astype(np.float32)
    maps = occlusion_maps(model, x, [0, 1], window=4, stride=3, layer="conv", batch_size=3)
    hidden = np.array([[4, 2], [2, 1]])
    np.testing.assert_array_equal(maps.positions_y, [0, 3])
    np.testing.assert_array_equal(maps.positions_x, [0, 3])
    np.testing.assert_allclose(maps.prob_true[0], expit(4 - hidden - 2.5), rtol=1e-6)
    np.testing.assert_allclose(maps.prob_true[1], expit(2.5 + 4 - hidden), rtol=1e-6)
    np.testing.assert_array_equal(maps.most_probable, [[[1, 1], [1, 0]], [[1, 1], [1, 1]]])
    np.testing.assert_array_equal(maps.strongest_channel, [0, 1])
    np.testing.assert_allclose(maps.strongest_map_activity, [[[20, 24], [24, 27]]] * 2, rtol=1e-6)
    assert maps.most_probable.dtype == np.int64 and maps.prob_true.dtype == np.float32


def test_paper_maps_with_a_grey_baseline_and_stride_one():
    # Region = the single pixel (1, 1) of a 3×3 image of 2s, scale 1, other class at 1.0; a 2×2 occluder of 0.5
    # at stride 1 has positions 0 and 1 per axis, and every position covers pixel (1, 1): z0 = 0.5 everywhere,
    # p(class 0) = σ(0.5 − 1) and class 1 wins; the activity of channel 0 is 18 − 4·(2 − 0.5) = 12.
    model = RegionSum((1, 2, 1, 2), other=1.0)
    maps = occlusion_maps(model, np.full((1, 3, 3), 2.0, np.float32), 0, window=(2, 2), stride=1, baseline=0.5,
                          layer="conv")
    np.testing.assert_allclose(maps.prob_true, np.full((1, 2, 2), expit(-0.5)), rtol=1e-6)
    np.testing.assert_array_equal(maps.most_probable, np.ones((1, 2, 2)))
    np.testing.assert_allclose(maps.strongest_map_activity, np.full((1, 2, 2), 12.0), rtol=1e-6)


def test_paper_probability_map_matches_captum_mode_with_non_overlapping_windows():
    # With stride = window, Captum's softmax occlusion is p(x) − p(x_occ) piecewise per window.
    model = random_cnn((1, 12, 12))
    x = random_images(2, (1, 12, 12))
    maps = occlusion_maps(model, x, [1, 2], window=4, stride=4, layer="conv2")
    drop = occlusion(model, x, [1, 2], window=4, stride=4, output="softmax")
    clean = torch.softmax(model(x), dim=1).detach().numpy()[[0, 1], [1, 2]]
    expected = clean[:, None, None] - maps.prob_true
    np.testing.assert_allclose(drop[:, 0, ::4, ::4], expected, rtol=1e-5, atol=1e-7)
    acts = model.conv2(model.pool1(model.relu1(model.conv1(x)))).detach()
    assert maps.strongest_channel.tolist() == acts.flatten(2).amax(2).argmax(1).tolist()


def test_paper_maps_errors():
    model, x = random_cnn(), random_images(1, (1, 10, 10))
    with pytest.raises(MethodError, match=r"the occluder is a \(h, w\) square over all channels"):
        occlusion_maps(model, x, 0, window=(1, 3, 3))
    with pytest.raises(MethodError, match="needs a layer with feature maps .* 'flatten' gives"):
        occlusion_maps(model, x, 0, window=3, layer="flatten")
    with pytest.raises(MethodError, match="the model has no layer 'conv5'"):
        occlusion_maps(model, x, 0, window=3, layer="conv5")
    assert not model.flatten._forward_hooks
