"""``nnsee report RUN --layers NAMES``: the dotted names reach ``build_report(layers=[...])`` as a list; none given
is ``layers=None`` (the report's own choice), and a list of no names is refused in one line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import nnsee.report
from nnsee.cli import main


@pytest.mark.parametrize(("given", "expected"),
                         [(["--layers", " layer2, layer4.1.conv1 ,"], ["layer2", "layer4.1.conv1"]), ([], None)],
                         ids=["names", "none"])
def test_the_layer_names_reach_build_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, given: list[str],
                                            expected: list[str] | None) -> None:
    seen: dict[str, Any] = {}

    def build_report(run: Any, out: Any, **options: Any) -> Path:
        seen.update(options)
        return tmp_path / "index.html"

    monkeypatch.setattr(nnsee.report, "build_report", build_report)
    result = CliRunner().invoke(main, ["report", str(tmp_path), "--device", "cpu", *given])
    assert result.exit_code == 0, result.stderr
    assert seen["layers"] == expected and seen["device"] == "cpu"


def test_no_layer_names_is_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["report", str(tmp_path), "--layers", " , "])
    assert result.exit_code == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error")]
    assert len(errors) == 1 and "--layers" in errors[0] and "comma-separated layer names" in errors[0], result.stderr
