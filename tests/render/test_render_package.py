"""The package imports without matplotlib and exports its public names."""

from __future__ import annotations

import subprocess
import sys

import nnsee.render as render


def test_import_is_lazy_about_matplotlib() -> None:
    code = "import sys, nnsee.render; print(any(m.startswith('matplotlib') for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_all_names_exist() -> None:
    for name in render.__all__:
        assert hasattr(render, name), name
