"""``scripts/gpu_check.py`` runs here, on the CPU at 32 px, so it cannot rot before a GPU machine runs it at 224."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from nnsee.methods.attribution.registry import METHODS

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "gpu_check.py"
SMALL = ["--device", "cpu", "--size", "32", "--width", "4", "--images", "10", "--window", "16", "--stride", "16"]


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_method_and_view_is_checked_and_agrees_on_the_cpu(capsys: pytest.CaptureFixture[str]) -> None:
    assert _script().main(SMALL) == 0
    out = capsys.readouterr().out
    rows = [re.split(r"\s{2,}", line.strip()) for line in out.splitlines() if line.startswith("  ")]
    assert rows[0][0] == "check"  # the header
    lines = {row[0]: row[-1] for row in rows[1:]}
    expected = [*METHODS, "grad-cam layer2", "grad-cam layer4", "occlusion full", "occlusion region",
                "paper occlusion maps", "top-9 values layer3", "top-9 deconvnet projections layer3"]
    assert sorted(lines) == sorted(expected), out
    assert all(verdict.startswith("ok") for verdict in lines.values()), out
    assert out.rstrip().endswith("all results agree")


def test_a_float32_result_off_by_a_thousandth_fails_the_check(capsys: pytest.CaptureFixture[str],
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    script = _script()
    real = script.checks

    def sabotaged(*args: object) -> dict:
        saliency = real(*args)["saliency"]
        return {"saliency": saliency, "saliency, float32 off by 1e-3":  # what a device bug of that size looks like
                lambda m, x: saliency(m, x) * (np.float32(1.001) if x.dtype.is_floating_point and x.dtype.itemsize == 4
                                               else 1.0)}

    monkeypatch.setattr(script, "checks", sabotaged)
    assert script.main(SMALL) == 1
    out = capsys.readouterr().out
    assert "saliency, float32 off by 1e-3" in out and "FAIL" in out and out.rstrip().endswith("1 FAILED"), out


def test_only_a_gradient_map_may_pass_with_isolated_flips() -> None:
    """The 224-px measurements: SmoothGrad 1.2e-2 with 77 of 2.5M elements flipped passes; the same numbers on a
    forward-only result, or off everywhere, or far off in one place, do not; integrated gradients have their own
    bound."""
    verdict = _script().verdict
    assert verdict("saliency", 4.3e-7, 0.0) == "ok"
    assert verdict("smoothgrad", 1.2e-2, 3.1e-5) == "ok, isolated flips"
    assert verdict("occlusion full", 1.2e-2, 3.1e-5) == "FAIL"
    assert verdict("top-9 values layer3", 2e-4, 1e-6) == "FAIL"
    assert verdict("saliency", 1e-3, 0.5) == "FAIL"
    assert verdict("deconvnet", 0.06, 1e-6) == "FAIL"
    assert verdict("guided-backprop", 1e-3, 0.02) == "FAIL"
    assert verdict("integrated-gradients", 1.3e-3, 1.4e-2) == "ok"  # measured at 224 px, width 16
    assert verdict("integrated-gradients", 2e-2, 5e-2) == "FAIL"
