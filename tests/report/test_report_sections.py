"""The report's sections come from one declared list; the run is passed by value; the overview describes any model."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import torch
from tiny import make_splits
from torch import nn

import nnsee.report.build
import nnsee.report.sections
import nnsee.train.run
from nnsee.errors import MethodError
from nnsee.models import build_model
from nnsee.report import build_report
from nnsee.report.sections import SECTIONS, ReportInput, Section
from nnsee.report.sections.overview import describe_model, overview
from nnsee.train import TrainConfig, fit, load_run

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
    assert default == ["overview", "templates", "units", "class-units", "gallery", "confusion", "standardization",
                       "evolution", "layers", "faithfulness", "invariance", "representation"]
    monkeypatch.setattr(nnsee.report.sections, "SECTIONS", SECTIONS[::-1])
    html = build_report(mlp_run, tmp_path / "b").read_text(encoding="utf-8")
    assert _headings(html) == default[::-1]
    links = re.findall(r'<a href="#([^"]+)"', html)
    assert links == default[::-1]  # the cnn section computed None: neither heading nor link


def test_unit_pages_stop_at_the_cap_with_a_note(mlp_run: Path, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(nnsee.report.sections.units, "MAX_UNIT_PAGES", 2)
    index = build_report(mlp_run, tmp_path / "r", max_units=8)
    pages = sorted(p.name for p in (tmp_path / "r").glob("*.html") if not p.name.startswith("confusion-"))
    assert pages == ["index.html", "units-2.html"]
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


class OwnNet(nn.Module):
    """A user's own module: no nnsee spec."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3, padding=1)
        self.relu = nn.ReLU()
        self.flat = nn.Flatten()
        self.fc = nn.Linear(2 * 8 * 8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.flat(self.relu(self.conv(x))))


def _fitted(model: nn.Module, out: Path) -> None:
    fit(model, make_splits(n_per_class=6, shape=(1, 8, 8)), TrainConfig(epochs=1, batch_size=8), out,
        progress=False)


def test_overview_describes_a_cnn_with_a_hidden_layer_from_its_spec(tmp_path: Path) -> None:
    torch.manual_seed(0)
    _fitted(build_model("cnn", (1, 8, 8), 3, channels=[2], kernel=3, hidden=64), tmp_path / "cnn")
    run = load_run(tmp_path / "cnn")
    facts = dict(overview(ReportInput(run, make_splits(n_per_class=6, shape=(1, 8, 8))))["facts"])
    assert facts["model"] == "cnn (channels=[2], kernel=3, hidden=64)"


def test_overview_of_your_own_module_names_its_class_layers_and_parameters(tmp_path: Path) -> None:
    torch.manual_seed(0)
    _fitted(OwnNet(), tmp_path / "own")
    run = load_run(tmp_path / "own", model=OwnNet())
    index = build_report(run, splits=make_splits(n_per_class=6, shape=(1, 8, 8)))
    assert index == tmp_path / "own" / "report" / "index.html"
    html = index.read_text(encoding="utf-8")
    assert "your own module OwnNet (1 Conv2d, 1 ReLU, 1 Flatten, 1 Linear; 407 parameters)" in html


def test_describe_model_shows_every_spec_option_but_the_shared_ones() -> None:
    model = build_model("mlp", (1, 4, 4), 3, hidden=[5, 4], activation="relu")
    assert describe_model(model, model.nnsee_spec) == "mlp (hidden=[5, 4], activation=relu)"
    softmax = build_model("softmax", (1, 4, 4), 3)
    assert describe_model(softmax, softmax.nnsee_spec) == "softmax"
