"""The unit cards' fine ablation: each card's mean change of p(class) and its one-line summary, checked against a
float64 forward with the unit zeroed (an independent reference), and shown on the page with hostile class names."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import torch

from nnsee.data.spec import load_splits
from nnsee.models.hooks import zero_units
from nnsee.report import build_report
from nnsee.report.sections.common import ReportInput
from nnsee.report.sections.units import off_summary, units_section
from nnsee.train.run import load_run


def reference_probability_change(model: torch.nn.Module, x: np.ndarray, unit: int) -> np.ndarray:
    """Mean over images of softmax(z with h_unit = 0) − softmax(z), from a float64 copy of the model."""
    m = copy.deepcopy(model).double().eval()
    xt = torch.as_tensor(x, dtype=torch.float64)
    with torch.no_grad():
        base = torch.softmax(m(xt), 1)
        with zero_units(m, "act1", [unit]):
            off = torch.softmax(m(xt), 1)
    return (off - base).mean(0).numpy()


def test_each_card_shows_the_mean_probability_change_and_its_largest_drop(mlp_run: Path) -> None:
    run = load_run(mlp_run)
    splits = load_splits(run.data_spec)
    inp = ReportInput(run, splits, sort_units="ablation")
    ctx = units_section(inp)
    assert ctx is not None and ctx["n_val"] == len(splits.val.labels)
    x = run.standardize(np.asarray(splits.val.images))
    cards = [c for page in ctx["pages"] for c in page]
    drops = []
    for c in cards:
        expected = reference_probability_change(run.model, x, c["unit"])
        k = int(np.argmin(expected))
        drops.append(-expected[k])
        assert c["summary"] == f"switching it off lowers p({inp.class_names[k]}) by {-expected[k]:.2g} on average"
        assert "mean change of p(class) when switched off" in c["probability_svg"]
        assert len(c["logit"]) == 3
    assert drops == sorted(drops, reverse=True)  # sort_units="ablation": the largest mean probability drop first


def test_summary_edge_cases() -> None:
    assert off_summary(np.array([np.nan, np.nan]), ["a", "b"]) is None
    assert off_summary(np.zeros(2), ["a", "b"]) == "switching it off lowers no class's probability on average"
    assert off_summary(np.array([0.01, -0.081, 0.071]), ["a", "b", "c"]) == (
        "switching it off lowers p(b) by 0.081 on average")


def test_the_page_shows_the_charts_with_escaped_names(mlp_run: Path, tmp_path: Path) -> None:
    html = build_report(mlp_run, tmp_path / "r", max_units=64).read_text()
    assert html.count("mean change of p(class) when switched off") == 20
    assert html.count("switching it off lowers p(") == 20
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
