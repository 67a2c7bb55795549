"""The live page in headless Chromium (Debian's, driven by Playwright for Python; no browser download): draw, see the
prediction; click a unit, see its card; upload a PNG; compare two runs. No page errors, no request outside 127.0.0.1;
screenshots in test-artifacts/."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from offline_browser import offline_page
from serve.serve_util import png

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def test_serve_page_in_chromium(server, tmp_path):
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{CHROMIUM} is missing (CI must install Debian's chromium)")
        pytest.skip(f"{CHROMIUM} is missing")
    ARTIFACTS.mkdir(exist_ok=True)
    sync_api = pytest.importorskip("playwright.sync_api")
    with offline_page(1400, 1000, loopback=True) as seen:
        page = seen.page
        page.goto(server.base + "/")
        page.wait_for_selector("#templates figure")
        page.select_option("#run", "mlp")

        box = page.locator("#pad").bounding_box()  # a horizontal bar near the top: class 0's band
        page.mouse.move(box["x"] + 30, box["y"] + 60)
        page.mouse.down()
        page.mouse.move(box["x"] + 250, box["y"] + 60, steps=20)
        page.mouse.move(box["x"] + 250, box["y"] + 90, steps=5)
        page.mouse.move(box["x"] + 30, box["y"] + 90, steps=20)
        page.mouse.up()
        page.wait_for_selector(".pane .prediction")
        assert "predicted:" in page.inner_text(".pane .prediction")
        page.screenshot(path=str(ARTIFACTS / "serve-draw.png"), full_page=True)

        page.locator("button.unit").first.click()
        page.wait_for_selector("#card h2")
        assert "unit" in page.inner_text("#card h2")
        assert page.locator("#card .outgoing .bar").count() == 3
        page.screenshot(path=str(ARTIFACTS / "serve-card.png"), full_page=True)

        page.click("#unit-next")  # the unit browser walks every card of the run
        sync_api.expect(page.locator("#card h2")).to_contain_text("unit 1")
        page.click("#unit-prev")
        sync_api.expect(page.locator("#card h2")).to_contain_text("unit 0")

        page.select_option("#compare", "cnn")
        expect = sync_api.expect  # no wait_for_function: the page's CSP forbids eval, rightly
        expect(page.locator(".pane")).to_have_count(2)
        a = np.zeros((56, 56), np.uint8)
        a[28:42] = 255  # the band of class 2
        upload = tmp_path / "band.png"
        upload.write_bytes(png(a))
        page.set_input_files("#upload", str(upload))
        for run in ("mlp", "cnn"):
            expect(page.locator(f".pane[data-run={run}] .prediction")).to_contain_text("<b>bold</b>")
        assert page.locator(".pane[data-run=cnn] .maps figure").count() == 3
        page.screenshot(path=str(ARTIFACTS / "serve-compare.png"), full_page=True)

        # the Show list is the method registry: a method picked there is drawn for both runs, (default) restores
        shown = page.locator("#view option").all_inner_texts()
        assert shown[0] == "(default)" and {"contributions", "smoothgrad", "grad-cam"} <= set(shown)
        page.select_option("#view", "smoothgrad")
        for run in ("mlp", "cnn"):
            expect(page.locator(f".pane[data-run={run}] .maps figure")).to_have_count(1)
            expect(page.locator(f".pane[data-run={run}] .maps figcaption")).to_contain_text("smoothgrad")
        page.select_option("#view", "grad-cam")  # the CNN's only: the MLP keeps its default view
        expect(page.locator(".pane[data-run=cnn] .maps figcaption")).to_contain_text("grad-cam")
        expect(page.locator(".pane[data-run=mlp] button.unit").first).to_be_visible()
        page.select_option("#view", "")
        expect(page.locator(".pane[data-run=cnn] .maps figure")).to_have_count(3)
        page.screenshot(path=str(ARTIFACTS / "serve-views.png"), full_page=True)
    assert seen.errors == []
    assert seen.blocked == []
