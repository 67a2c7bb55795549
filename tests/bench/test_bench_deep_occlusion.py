"""The deep-net occlusion benchmark's work criterion can fail: the share of multiply-adds the region plan skips on
ResNet-18 at 224 px (window 16 stride 8) is judged against MIN_SKIPPED, and a planner that keeps every node whole
(or stops at the stem) falls below it."""

from __future__ import annotations

import pytest

from benchmarks import deep_occlusion
from benchmarks.common import Target
from nnsee.methods.attribution import occlusion_region


def skipped_target(case) -> Target:
    skipped = deep_occlusion.skipped_work(case)
    return Target("skipped", skipped, ">=", deep_occlusion.MIN_SKIPPED)


def test_resnet18_at_224_skips_over_half_of_the_work_and_a_crippled_planner_fails(monkeypatch):
    case = deep_occlusion.plan(quick=False, seed=0).cases[0]
    assert tuple(case.x.shape) == (1, 3, 224, 224) and (case.window, case.stride) == (16, 8)
    target = skipped_target(case)
    assert target.passed and target.value == pytest.approx(0.543, abs=0.01)  # 54% of the multiply-adds
    monkeypatch.setattr(occlusion_region, "WHOLE", 0.0)  # every node on whole copies
    assert skipped_target(case).passed is False
    monkeypatch.setattr(occlusion_region, "WHOLE", 1.0)
    monkeypatch.setattr(occlusion_region, "_BINARY_FUNCTIONS", set())  # residual additions not followed
    assert skipped_target(case).passed is False  # 19%: the stem and the first block's branch only
