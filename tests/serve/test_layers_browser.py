"""The live page's layer-by-layer view in headless Chromium: draw a stroke, and #layers-view fills with every layer
of the CNN run (its shapes), the logits and the probabilities; no page errors, no request outside 127.0.0.1."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from offline_browser import offline_page

CHROMIUM = "/usr/bin/chromium"
SHOTS = Path("/tmp/shots/h3")


def test_drawn_image_fills_the_layers_view(server):
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{CHROMIUM} is missing (CI must install Debian's chromium)")
        pytest.skip(f"{CHROMIUM} is missing")
    sync_api = pytest.importorskip("playwright.sync_api")
    with offline_page(1400, 1000, loopback=True) as seen:
        page = seen.page
        page.goto(server.base + "/")
        page.wait_for_selector("#run option[value='cnn']", state="attached")
        page.select_option("#run", "cnn")
        box = page.locator("#pad").bounding_box()
        page.mouse.move(box["x"] + 30, box["y"] + 60)
        page.mouse.down()
        page.mouse.move(box["x"] + 250, box["y"] + 60, steps=20)
        page.mouse.move(box["x"] + 250, box["y"] + 90, steps=5)
        page.mouse.move(box["x"] + 30, box["y"] + 90, steps=20)
        page.mouse.up()
        expect = sync_api.expect
        expect(page.locator("#layers-out figure.layer")).to_have_count(9)  # input + the 8 layers of the CNN
        captions = page.locator("#layers-out figcaption").all_inner_texts()
        images = page.eval_on_selector_all(
            "#layers-out img", "els => els.map(e => ({alt: e.alt, ok: e.complete && e.naturalWidth > 0}))")
        heading = page.inner_text("#layers-out p")
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.locator("#layers-view").screenshot(path=str(SHOTS / "serve-layers-cnn.png"))
    assert seen.errors == [] and seen.blocked == []
    assert "input 1 × 8 × 8" in captions[0]
    assert any("conv1" in c and "Conv2d · 4 × 8 × 8" in c for c in captions)
    assert any("pool2" in c and "MaxPool2d · 6 × 2 × 2" in c for c in captions)
    assert any("out" in c and "Linear · 3" in c for c in captions)
    assert len(images) == 11 and all(i["ok"] for i in images), images  # 9 tiles, logits and probabilities
    assert "run cnn: predicted" in heading and "8 layers" in heading
