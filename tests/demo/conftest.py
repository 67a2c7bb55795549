"""One test-size demo (``run_demo(size="test")``: tiny models on 400/100/100 digits) shared by the demo tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from nnsee.demo import run_demo


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """The demo's folder and its entries by title."""
    out = tmp_path_factory.mktemp("demo") / "demo"
    entries = run_demo(out, size="test", fashion=False, say=lambda _: None)
    return out, {e.title: e for e in entries}
