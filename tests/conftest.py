"""Shared fixtures."""

from __future__ import annotations

import pytest
from tiny import make_splits

from nnsee.data.imageset import Splits

# Under CI=true, a skip for a missing required resource (Captum, Chromium, Fashion-MNIST, ...) fails the run.
pytest_plugins = ("required_resources",)


@pytest.fixture
def tiny_splits() -> Splits:
    return make_splits()
