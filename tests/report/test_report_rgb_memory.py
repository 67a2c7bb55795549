"""The whole report over 300 photos of 3x224x224 on a small CNN, in a child under an address-space limit: its peak
stays within a bound made of the images' own float32 bytes.

Measured (child VmHWM): 1,236 MB for the 181 MB of images; 1,461 MB before the standardization section fitted its
pixel statistics once on a bounded reference (it fitted them 5 times in float64 on up to 5,000 images: 12 GB of
temporaries at 5,000 photos). What the bound is made of: ~250 MB of torch and nnsee, the images twice while the
splits are cut (2 copies), the standardized training images the report caches (0.8), top-9 crops, occlusion and the
randomization check's working sets (~250 MB at this size): 500 MB + 4.7 copies = 1,351 MB."""

from __future__ import annotations

from pathlib import Path

import torch
from limited_child import call, run_limited
from photos import photo_folder

from nnsee.data import load_data
from nnsee.models import build_model
from nnsee.train import TrainConfig, fit

PER_CLASS = 100  # 300 photos: 181 MB as float32 at 3x224x224


def test_report_peak_is_bounded_by_the_images(tmp_path: Path) -> None:
    root = photo_folder(tmp_path / "photos", PER_CLASS, 240, fmt="jpg")
    splits = load_data(str(root), size=224, grayscale=False, seed=0)
    torch.manual_seed(0)
    model = build_model("cnn", splits.shape, 3, channels=[2, 4], kernel=3)
    fit(model, splits, TrainConfig(epochs=1, batch_size=32, lr=0.01), tmp_path / "run", progress=False, save="end")
    del splits
    (outcome,), peak_kb = run_limited([call("nnsee.report.build:build_report", str(tmp_path / "run"))],
                                      limit=4 << 30, timeout=600)
    assert outcome[1] == "DONE", outcome
    data_mb = 3 * PER_CLASS * 3 * 224 * 224 * 4 / 1e6
    peak_mb = peak_kb * 1024 / 1e6
    print(f"report: {outcome[0]:.1f} s, peak {peak_mb:.0f} MB for {data_mb:.0f} MB of images")
    assert peak_mb < BOUND_BASE_MB + BOUND_COPIES * data_mb, f"peak {peak_mb:.0f} MB for {data_mb:.0f} MB of images"


BOUND_BASE_MB = 500
BOUND_COPIES = 4.7
