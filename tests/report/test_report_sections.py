"""The report's sections come from one declared list, and the run is passed by value."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

import nnsee.report.build
import nnsee.report.sections
import nnsee.train.run
from nnsee.errors import MethodError
from nnsee.report import build_report
from nnsee.report.sections import SECTIONS, ReportInput, Section
from nnsee.train import load_run

EXTRA = """<h2 id="extra">Extra: {{ sections.extra.word }}</h2>"""


def _extra(inp: ReportInput) -> dict[str, Any]:
    return {"word": f"<b>{len(inp.class_names)} classes</b>", "blob": b"extra bytes"}


def _headings(html: str) -> list[str]:
    return re.findall(r'<h2 id="([^"]+)"', html)


def test_a_section_declared_in_the_list_is_computed_linked_rendered_and_writes_its_file(
        softmax_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    extra = Section("extra", _extra, link="an extra", template=EXTRA, files=lambda c: {"extra.bin": c.pop("blob")})
    monkeypatch.setattr(nnsee.report.sections, "SECTIONS", [*SECTIONS, extra])  # the one list entry
    html = build_report(softmax_run, tmp_path / "r").read_text(encoding="utf-8")
    assert "Extra: &lt;b&gt;3 classes&lt;/b&gt;" in html  # rendered, escaped
    assert _headings(html)[-1] == "extra"  # last, as declared
    assert '<a href="#extra">an extra</a>' in html
    assert (tmp_path / "r" / "extra.bin").read_bytes() == b"extra bytes"


def test_the_page_follows_the_declared_order_and_leaves_out_empty_sections(
        mlp_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    default = _headings(build_report(mlp_run, tmp_path / "a").read_text(encoding="utf-8"))
    assert default == ["overview", "templates", "units", "class-units", "gallery", "standardization", "evolution"]
    monkeypatch.setattr(nnsee.report.sections, "SECTIONS", SECTIONS[::-1])
    html = build_report(mlp_run, tmp_path / "b").read_text(encoding="utf-8")
    assert _headings(html) == default[::-1]
    links = re.findall(r'<a href="#([^"]+)"', html)
    assert links == default[::-1]  # the cnn section computed None: neither heading nor link


def test_unit_pages_stop_at_the_cap_with_a_note(mlp_run: Path, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(nnsee.report.sections.units, "MAX_UNIT_PAGES", 2)
    index = build_report(mlp_run, tmp_path / "r", max_units=8)
    assert sorted(p.name for p in (tmp_path / "r").glob("*.html")) == ["index.html", "units-2.html"]
    assert "only the 16 most important units are shown" in index.read_text(encoding="utf-8")


def test_build_report_takes_the_loaded_run_and_loads_a_path_once(
        softmax_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = load_run(softmax_run)
    calls: list[Any] = []
    real = nnsee.train.run.load_run
    monkeypatch.setattr(nnsee.train.run, "load_run", lambda *a, **k: calls.append(a) or real(*a, **k))
    assert build_report(run, tmp_path / "a") == tmp_path / "a" / "index.html"
    assert calls == []
    build_report(softmax_run, tmp_path / "b")
    assert len(calls) == 1


def test_an_unknown_unit_order_is_refused_not_turned_into_a_note(softmax_run: Path, tmp_path: Path) -> None:
    with pytest.raises(MethodError, match="sort_units must be one of outgoing-norm, ablation, index; got 'size'"):
        build_report(softmax_run, tmp_path / "r", sort_units="size")
