"""The user's project on disk, written once for the adopt tests."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.adopt.user_code import write_project


@pytest.fixture(scope="session")
def project(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    files = write_project(tmp_path_factory.mktemp("user"))
    sys.path.insert(0, str(files["pkg"]))
    yield files
    sys.path.remove(str(files["pkg"]))
