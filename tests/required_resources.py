"""A pytest plugin: under ``CI=true`` a skip caused by a missing required resource fails the run.

Locally a test may skip when Captum, Playwright, Chromium or Fashion-MNIST is absent; in CI (``.ci/run`` installs
them all) such a skip would hide whole files behind one "skipped" line, so it becomes a failure instead. This covers
skips at collection (a module-level ``pytest.importorskip``) and in setup or call (``skipif`` marks,
``pytest.skip``). Every failed ``importorskip`` counts, whatever the module: CI installs all of ``.[test]``, so a
missing or moved module (e.g. Captum's private ``captum.attr._utils.approximation_methods``) is an error there.
Skips whose reason names none of these (root reads chmod 000 files, "not a git checkout") stay skips.
"""

from __future__ import annotations

import os

import pytest

# Matched, case-insensitively, against the skip's reason.
REQUIRED = ("could not import", "captum", "playwright", "chromium", "fashion-mnist", "httpx", "scipy", "sklearn",
            "scikit-learn", "mlxtend", "jupyter", "nbclient", "nbformat", "ipykernel", "anywidget")


def _reason(report: pytest.CollectReport | pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2])
    return str(longrepr)


def _fail_required_skip(report: pytest.CollectReport | pytest.TestReport) -> None:
    if os.environ.get("CI") != "true" or not report.skipped or hasattr(report, "wasxfail"):
        return
    reason = _reason(report)
    named = [r for r in REQUIRED if r in reason.lower()]
    if named:
        report.outcome = "failed"
        report.longrepr = (f"CI=true: a required resource is missing ({', '.join(named)}), so this must not skip.\n"
                           f"skip reason: {reason}\n"
                           "Install what .ci/run installs (chromium, dataset-fashion-mnist, pip install -e '.[test]').")


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector: pytest.Collector):  # type: ignore[no-untyped-def]
    report = yield
    _fail_required_skip(report)
    return report


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):  # type: ignore[no-untyped-def]
    report = yield
    _fail_required_skip(report)
    return report
