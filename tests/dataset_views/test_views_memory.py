"""Memory of the dataset views does not grow with the number of images: each case runs in a child under an
address-space limit and reports its own peak (VmHWM), for a few images and for many."""

from __future__ import annotations

from limited_child import call, run_limited

LIMIT = 3 << 30


def peak_mb(target: str, n: int) -> float:
    (outcome,), peak_kb = run_limited([call(f"tests.dataset_views.streamed:{target}", n)], LIMIT, timeout=240)
    assert outcome[1] == "DONE", outcome
    return peak_kb / 1024


def test_top9_of_every_stage_over_a_stream_does_not_grow_with_the_images() -> None:
    """1,500 streamed images at 96 px (ResNet-18 shape, width 16) peak within 40 MB of 100 (measured: 13 MB, and
    3,000 images no higher); keeping every activation of the five stages for the 1,400 more would take
    1,400 x 216 KB = 302 MB."""
    few, many = peak_mb("top9_of_every_stage", 100), peak_mb("top9_of_every_stage", 1500)
    assert many - few < 40, (few, many)


def test_grad_cam_of_every_stage_does_not_grow_with_the_images() -> None:
    """Grad-CAM of four stages for 200 images at 128 px (width 32, chunks of 39 images) peaks within 100 MB of 40
    images, beyond the input itself (200 x 192 KB); one chunk of all 200 would keep about 200 x 4.9 MB for
    autograd. (Measured growth: under 30 MB in the development venv, 30.2 MB in a fresh .ci/run.)"""
    few, many = peak_mb("grad_cam_of_every_stage", 40), peak_mb("grad_cam_of_every_stage", 200)
    growth = many - few - 160 * 3 * 128 * 128 * 4 / 2**20
    assert growth < 100, (few, many)
