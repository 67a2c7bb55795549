"""Open a real report from disk in headless Chromium with the network blocked (every request that is not ``file:`` or
``data:`` aborted): zero requests, zero page errors, escaped class names."""

from __future__ import annotations

from pathlib import Path

import pytest
from offline_browser import needs_chromium, offline_page
from tiny import HOSTILE_NAMES

from nnsee.report import build_report

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

pytestmark = needs_chromium


@pytest.mark.parametrize("run_fixture", ["softmax_run", "mlp_run", "cnn_run"])
def test_report_opens_offline_with_every_image_loaded(run_fixture: str, request: pytest.FixtureRequest,
                                                      tmp_path: Path) -> None:
    run: Path = request.getfixturevalue(run_fixture)
    index = build_report(run, tmp_path / "report", max_units=8)
    with offline_page(1280, 900, console=False) as seen:
        page = seen.page
        page.goto(index.as_uri())
        page.wait_for_load_state("load")
        images = page.eval_on_selector_all(
            "img", "els => els.map(e => ({src: e.src.slice(0, 20), ok: e.complete && e.naturalWidth > 0}))")
        text = page.inner_text("body")
        dialogs: list[str] = []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"report-{run_fixture}.png"), full_page=True)
        if len(page_names := sorted(p.name for p in index.parent.glob("units-*.html"))):
            page.goto((index.parent / page_names[-1]).as_uri())
            assert page.locator(".card").count() >= 1
    assert seen.blocked == [] and seen.errors == [] and dialogs == []
    assert len(images) > 20
    assert all(i["ok"] for i in images), [i for i in images if not i["ok"]]
    for name in HOSTILE_NAMES:
        assert name in text  # rendered as text, not interpreted as markup


