"""Shared fixtures."""

from __future__ import annotations

import pytest
from tiny import make_splits

from nnsee.data.imageset import Splits


@pytest.fixture
def tiny_splits() -> Splits:
    return make_splits()
