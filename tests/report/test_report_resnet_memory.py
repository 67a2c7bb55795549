"""The whole report of a ResNet-18 shape at 3x224x224, in a child under an address-space limit: a scaled-down
version of the issue's must-show (1,000 photos on the full-width model, at most 2 GiB; measured in
``python -m benchmarks --only report-memory``).

30 photos (18 MB as float32) on width 8 (180k weights): the peak is torch and nnsee (~350 MB), the images a few
times over while they load, and the working sets, each bounded by the code: top-9 batches of 32 images, projection
batches of 192 MB of leaf outputs (a whole pass: 51 images here), the randomization check one image at a time.
Before, the projections ran 256 images a batch (~1 GB of leaf outputs here) and the check four images at once."""

from __future__ import annotations

from pathlib import Path

from limited_child import call, run_limited
from photos import photo_folder
from zoo import resnet18

import nnsee

# Measured 770-800 MB in the development environment and 896-917 MB in a fresh .ci/run environment with the same
# packages (the difference is not understood; it is not noise: each side repeats within 20 MB). The bound guards
# against a blow-up (the report passed 2.7 GB before 2c6a42d); the projection batch size itself is pinned by
# tests/report/test_report_stages.py::test_projection_batches_fit_their_budget_and_give_the_same_projections.
BOUND_MB = 1100


def test_resnet_report_at_224_stays_bounded(tmp_path: Path) -> None:
    zoo = Path(__file__).resolve().parents[1] / "zoo.py"
    args = {"n_classes": 3, "width": 8}
    nnsee.adopt(resnet18(**args), input_shape=(3, 224, 224), normalize="imagenet", out=tmp_path / "run",
                code=f"{zoo}:resnet18", code_args=args, data=str(photo_folder(tmp_path / "photos", 10, 240)))
    (outcome,), peak_kb = run_limited([call("nnsee.report.build:build_report", str(tmp_path / "run"))],
                                      limit=4 << 30, timeout=1200)
    assert outcome[1] == "DONE", outcome
    peak_mb = peak_kb * 1024 / 1e6
    print(f"report: {outcome[0]:.1f} s, peak {peak_mb:.0f} MB")
    html = (tmp_path / "run" / "report" / "index.html").read_text(encoding="utf-8")
    assert "the check is made affordable" in html and "layer4" in html
    assert peak_mb < BOUND_MB, f"peak {peak_mb:.0f} MB"
