"""Report memory at 224 px (issue 12): the whole ``nnsee report`` over 1,002 RGB photos at 3x224x224 on the
ResNet-18-shaped model (tests/zoo.py, 11.7M weights, adopted with ImageNet normalization) must peak at most 2 GiB.

The photos are crops of scikit-image's astronaut, coffee and chelsea (334 each, one class per photo, 240 px JPEGs
loaded at 224). The report runs in a child process, which prints its own peak resident memory (VmHWM from
/proc/self/status: ``ru_maxrss`` would carry the parent's peak across fork and exec). ``--quick``: 30 photos and a
ResNet-18 of width 8, the same bound judged.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import IdleGate, Section, Target

LIMIT_MIB = 2048
CHILD = """
import sys
from nnsee.report.build import build_report
build_report(sys.argv[1], sys.argv[2])
print(next(line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM:")))
"""


def run(quick: bool, seed: int, gate: IdleGate, log: Any) -> Section:
    import nnsee
    from tests.photos import photo_folder
    from tests.zoo import resnet18

    per_class, width = (10, 8) if quick else (334, 64)
    zoo = Path(__file__).resolve().parents[1] / "tests" / "zoo.py"
    with tempfile.TemporaryDirectory(prefix="nnsee-bench-") as tmp:
        root = Path(tmp)
        log(f"  {3 * per_class} photos at 224 px, ResNet-18 shape of width {width}")
        args = {"n_classes": 3, "width": width, "seed": seed}
        nnsee.adopt(resnet18(**args), input_shape=(3, 224, 224), normalize="imagenet", out=root / "run",
                    code=f"{zoo}:resnet18", code_args=args, data=str(photo_folder(root / "photos", per_class, 240,
                                                                                   seed=seed, fmt="jpg")))
        gate.wait()
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", CHILD, str(root / "run"), str(root / "report")],
                              capture_output=True, text=True)
        seconds = time.perf_counter() - started
    if done.returncode != 0:
        log(done.stderr[-2000:])
    peak = int(done.stdout.split()[-1]) / 1024 if done.returncode == 0 else None  # kB -> MiB
    section = Section(
        f"Report memory: {3 * per_class:,} photos at 3x224x224 on the ResNet-18 shape (width {width})",
        ["what", "value"],
        rows=[["report seconds", f"{seconds:.0f}"], ["child peak RSS (VmHWM), MiB", "-" if peak is None else
                                                     f"{peak:,.0f}"]],
        notes=["every section: overview, standardization, filters, top-9 and projections of conv1 and layer1..4, "
               "Grad-CAM at each stage, occlusion, the randomization check"])
    section.targets.append(Target("report peak RSS at 224 px, MiB", peak, "<=", LIMIT_MIB, fmt=".0f"))
    section.raw = {"seconds": seconds, "peak_mib": peak, "photos": 3 * per_class, "width": width}
    return section
