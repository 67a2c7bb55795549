"""Study results are data defined in nnsee.studies; the report's study pages only render them."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from tiny import make_splits

import nnsee.studies
from nnsee.report.standardization_study import build_standardization_report
from nnsee.report.study import build_study_report
from nnsee.studies import overfit_study, standardization_study

# Front ends and what renders studies: a study module imports none of them.
ABOVE = ("nnsee.report", "nnsee.demo", "nnsee.cli", "nnsee.serve")


def _imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
    return names


def test_no_study_module_imports_the_report_or_a_front_end() -> None:
    folder = Path(nnsee.studies.__file__).parent
    modules = list(folder.glob("*.py"))
    assert len(modules) >= 3
    upward = {p.name: n for p in modules for n in _imports(p) if n.startswith(ABOVE)}
    assert upward == {}


def test_the_overfit_page_names_the_network_from_the_study_settings(tmp_path: Path) -> None:
    study = overfit_study(make_splits(n_per_class=6, shape=(1, 4, 4)), per_class=(3,), l2_values=(0.0,), hidden=8,
                          epochs=2, lbfgs_iterations=2)
    html = build_study_report(study, tmp_path).read_text(encoding="utf-8")
    assert "The same 8-unit network (tanh)" in html
    assert (tmp_path / "study.json").is_file() and (tmp_path / "weights.png").is_file()


@pytest.mark.filterwarnings("ignore:batch size")
def test_the_standardization_page_shows_every_mode(tmp_path: Path) -> None:
    study = standardization_study(make_splits(n_per_class=6, shape=(1, 4, 4)), epochs=1, n_examples=2)
    html = build_standardization_report(study, tmp_path).read_text(encoding="utf-8")
    for mode in ("image", "pixel", "none"):
        assert f"Templates learned with {mode}" in html
