"""The report's "which map to trust" section: deletion and insertion curves of every applicable method."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from nnsee.data.spec import load_splits
from nnsee.report import build_report
from nnsee.report.sections import SECTIONS, faithfulness_section
from nnsee.report.sections.common import ReportInput
from nnsee.train import load_run


def report_input(run_path: Path) -> ReportInput:
    run = load_run(run_path)
    return ReportInput(run, load_splits(run.data_spec))


def test_declared_after_the_cnn_views() -> None:
    names = [s.name for s in SECTIONS]
    assert names.index("faithfulness") > names.index("cnn")


@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_every_applicable_method_is_ranked_against_the_random_floor(kind: str, request: pytest.FixtureRequest
                                                                    ) -> None:
    from nnsee.methods.attribution.registry import applicable

    inp = report_input(request.getfixturevalue(f"{kind}_run"))
    f = faithfulness_section.faithfulness_section(inp)
    assert f is not None
    shown = {r["name"] for r in f["rows"]}
    assert shown == set(applicable(inp.run.model, inp.shape)) - set(f["left_out"]) | {"random order"}
    assert f["left_out"] == []  # tiny models: every method fits
    if kind == "cnn":
        assert {"grad-cam", "guided-backprop"} <= shown
    scores = [r["score"] for r in f["rows"]]
    assert scores == sorted(scores, reverse=True)
    assert f["n"] == 6  # 3 classes, 2 test images each (at most 10)
    for r in f["rows"]:
        assert 0 <= r["deletion"] <= 1 and 0 <= r["insertion"] <= 1
    assert len(f["charts"]) == 2 and all(c.count("<polyline") == len(shown) for c in f["charts"])


def test_sample_is_stratified_and_bounded() -> None:
    labels = np.array([0, 0, 1, 2, 1, 0, 2, 2, 1])
    np.testing.assert_array_equal(faithfulness_section.sample(labels, 3), [0, 2, 3, 1, 4, 6])
    many = np.repeat(np.arange(30), 3)
    picked = faithfulness_section.sample(many, 30)
    assert len(picked) == 10 and len(set(many[picked])) == 10


def test_in_the_page_without_scripts(cnn_run: Path, tmp_path: Path) -> None:
    html = build_report(cnn_run, tmp_path / "report").read_text()
    assert 'id="faithfulness"' in html and 'href="#faithfulness"' in html
    part = html[html.index('id="faithfulness"'):]
    assert "random order" in part and "deletion AUC" in part
    assert not re.search(r"<script|\son[a-z]+\s*=|javascript:", html, re.IGNORECASE)


def test_absent_with_a_note_when_no_method_applies_or_it_costs_too_much(mlp_run: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    import nnsee.methods.attribution.registry as registry

    inp = report_input(mlp_run)
    monkeypatch.setattr(registry, "applicable", lambda model, shape=None: {})
    assert faithfulness_section.faithfulness_section(inp) is None
    assert any("no attribution method applies" in n for n in inp.notes)
    monkeypatch.undo()
    monkeypatch.setattr(faithfulness_section, "CURVES_MACS", 1.0)
    assert faithfulness_section.faithfulness_section(inp) is None
    assert any("cost too much" in n for n in inp.notes)


def test_costly_methods_are_left_out_and_named(mlp_run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    inp = report_input(mlp_run)
    macs = faithfulness_section.forward_macs(inp.run.model, inp.shape)
    # between one gradient pass and integrated gradients' 50: the cheap methods stay, IG and smoothgrad go
    monkeypatch.setattr(faithfulness_section, "METHOD_MACS", 6 * 3 * macs * 10)
    f = faithfulness_section.faithfulness_section(inp)
    assert f is not None
    assert {"integrated-gradients", "smoothgrad"} <= set(f["left_out"])
    assert "saliency" in {r["name"] for r in f["rows"]}
