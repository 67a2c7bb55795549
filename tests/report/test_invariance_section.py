"""The report's invariance section (Z&F Fig. 5): which images and layers, one row per transform, escaped names."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from tiny import HOSTILE_NAMES

import nnsee.report.sections
from nnsee.data.spec import load_splits
from nnsee.methods.invariance import FAMILIES
from nnsee.report import build_report
from nnsee.report.sections import SECTIONS, ReportInput, Section
from nnsee.report.sections.invariance_section import TEMPLATE, chart, invariance_section
from nnsee.train import load_run


def _input(run_path: Path) -> ReportInput:
    run = load_run(run_path)
    return ReportInput(run, load_splits(run.data_spec, download=False))


@pytest.mark.parametrize(("fixture", "layers"), [("softmax_run", []), ("mlp_run", ["act1"]),
                                                 ("cnn_run", ["conv1", "conv2", "flatten"])])
def test_three_images_of_different_classes_and_the_models_stages(fixture: str, layers: list[str],
                                                                   request: pytest.FixtureRequest) -> None:
    inp = _input(request.getfixturevalue(fixture))
    ctx = invariance_section(inp)
    assert ctx is not None and ctx["layers"] == layers
    labels = [int(inp.splits.test.labels[img["index"]]) for img in ctx["images"]]
    assert sorted(labels) == [0, 1, 2]  # one of each of the 3 classes
    for img in ctx["images"]:
        assert [r["family"] for r in img["rows"]] == list(FAMILIES)
        for r in img["rows"]:
            assert r["strip"].startswith("data:image/png;base64,")
            assert r["probability"].count("<polyline") == 1
            assert (r["distances"] is None) == (not layers)
            if layers:  # one line per layer, named in the legend
                assert r["distances"].count("<polyline") == len(layers)


def test_the_x_axis_is_named_for_the_transform_and_names_are_escaped() -> None:
    svg = chart({"<b>": (np.arange(3.0), np.ones(3))}, HOSTILE_NAMES[0], "rotation (°) <i>")
    assert "epoch" not in svg and "rotation (°) &lt;i&gt;</text></svg>" in svg
    assert "<script>" not in svg and "<b>" not in svg


def test_the_section_in_a_report_is_static_and_escaped(cnn_run: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    if not any(s.name == "invariance" for s in SECTIONS):  # declared in nnsee.report.sections (after faithfulness)
        monkeypatch.setattr(nnsee.report.sections, "SECTIONS",
                            [*SECTIONS, Section("invariance", invariance_section, link="invariance",
                                                template=TEMPLATE)])
    html = build_report(cnn_run, tmp_path / "r").read_text(encoding="utf-8")
    part = html[html.index('<h2 id="invariance">'):]
    assert '<a href="#invariance">' in html
    assert "<script" not in part and "&lt;script&gt;alert(1)&lt;/script&gt;" in part
    assert len(re.findall(r"<h3>", part)) >= 3 and part.count("<svg") >= 18  # 3 images x 3 rows x 2 charts
    assert not re.findall(r'src="(?!data:)', part)


def test_the_reports_chosen_test_images_are_shown(mlp_run: Path) -> None:
    run = load_run(mlp_run)
    inp = ReportInput(run, load_splits(run.data_spec, download=False), layer_images=[5, 2, 5])
    ctx = invariance_section(inp)
    assert [img["index"] for img in ctx["images"]] == [5, 2] and ctx["chosen"]
