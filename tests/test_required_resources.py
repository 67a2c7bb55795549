"""The CI guard of tests/required_resources.py on a tiny suite in a subprocess: with Captum hidden, a missing
Chromium, a missing Fashion-MNIST and a module that moved, CI=true fails the run; locally they skip; legitimate
skips stay skips."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

SUITE = {
    "test_captum.py": "import pytest\ncaptum_attr = pytest.importorskip('captum.attr')\n\n"
                      "def test_uses_captum():\n    pass\n",
    "test_resources.py": (
        "import pytest\n\n"
        "@pytest.mark.skipif(True, reason='apt-get install chromium (done by .ci/run)')\n"
        "def test_browser():\n    pass\n\n"
        "@pytest.mark.skipif(True, reason='needs apt-get install dataset-fashion-mnist')\n"
        "def test_fashion():\n    pass\n\n"
        "def test_moved_private_module():\n    pytest.importorskip('json._a_private_module_that_moved')\n\n"
        "def test_not_a_checkout():\n    pytest.skip('not a git checkout')\n\n"
        "@pytest.mark.skipif(True, reason='root reads chmod 000 files')\n"
        "def test_root():\n    pass\n\n"
        "def test_plain():\n    pass\n"),
    "captum/__init__.py": "raise ModuleNotFoundError('No module named captum (hidden by the test)', name='captum')\n",
    "pytest.ini": "[pytest]\n",
}


def _run(tmp_path: Path, ci: bool) -> tuple[int, dict[str, int], str]:
    for name, text in SUITE.items():
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text(text)
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), str(Path(__file__).parent)])
    if ci:
        env["CI"] = "true"
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "required_resources",
                          "-c", str(tmp_path / "pytest.ini"), "--rootdir", str(tmp_path), "-rA",
                          "--continue-on-collection-errors", str(tmp_path)],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    counts = {k: int(n) for n, k in re.findall(r"(\d+) (passed|failed|skipped|errors?)", out.stdout.splitlines()[-1])}
    return out.returncode, counts, out.stdout


def test_ci_turns_required_skips_into_failures(tmp_path: Path) -> None:
    rc, counts, out = _run(tmp_path, ci=True)
    assert rc == 1 and counts == {"failed": 1, "passed": 1, "skipped": 2, "errors": 3}, out
    assert re.search(r"ERROR .*test_captum.py - CI=true: a required resource is missing", out), out
    for test in ("test_browser", "test_fashion"):  # skipif marks act in setup: an error
        assert re.search(rf"ERROR .*::{test} - CI=true", out), out
    assert re.search(r"FAILED .*::test_moved_private_module - CI=true", out), out
    assert "SKIPPED [1] test_resources.py" in out and "not a git checkout" in out and "chmod 000" in out


def test_locally_they_skip(tmp_path: Path) -> None:
    rc, counts, out = _run(tmp_path, ci=False)
    assert rc == 0 and counts == {"passed": 1, "skipped": 6}, out
