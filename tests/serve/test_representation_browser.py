"""The live representation map in headless Chromium: hovering a dot shows that test image (drawn on the canvas) and
its class; the snapshot slider moves the dots; a drawn image gets its nearest training images. No page error, no
request outside 127.0.0.1; screenshots in /tmp/shots/h7/."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from offline_browser import offline_page
from serve.serve_util import Server, start_server, stop
from tiny import HOSTILE_NAMES, banded_npz

from nnsee.data import load_data
from nnsee.models import build_model
from nnsee.train import TrainConfig, fit

CHROMIUM = "/usr/bin/chromium"
SHOTS = Path("/tmp/shots/h7")
CANVAS_MAX = ("c => Math.max(...c.getContext('2d').getImageData(0, 0, c.width, c.height).data"
              ".filter((v, i) => i % 4 < 3))")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, int]]:
    root = tmp_path_factory.mktemp("rep-live")
    banded_npz(root / "bands.npz", 60, 8, width=2, noise=0.2, signal=0.8, class_names=HOSTILE_NAMES)
    splits = load_data(str(root / "bands.npz"), seed=0)
    torch.manual_seed(0)
    model = build_model("mlp", splits.shape, splits.train.n_classes, hidden=[10])
    fit(model, splits, TrainConfig(epochs=3, batch_size=16, lr=0.01, snapshots=[1, 2, 3]), root / "mlp",
        progress=False)
    s = start_server([root / "mlp"])
    try:
        yield s, len(splits.test)
    finally:
        stop(s)
        shutil.rmtree(root, ignore_errors=True)


def test_hover_a_dot_shows_its_image_and_a_drawing_its_neighbours(server: tuple[Server, int]) -> None:
    server, n_test = server
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{CHROMIUM} is missing (CI must install Debian's chromium)")
        pytest.skip(f"{CHROMIUM} is missing")
    SHOTS.mkdir(parents=True, exist_ok=True)
    sync_api = pytest.importorskip("playwright.sync_api")
    with offline_page(1300, 1000, loopback=True) as seen:
        page = seen.page
        page.goto(server.base + "/")
        page.wait_for_selector("#rep-map circle", timeout=60_000)
        dots = page.locator("#rep-map circle")
        n = dots.count()
        thumb = page.locator("#rep-thumb")
        assert thumb.is_hidden()
        dot = dots.last
        dot.scroll_into_view_if_needed()
        before = dot.get_attribute("cx"), dot.get_attribute("cy")
        box = dot.bounding_box()
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        sync_api.expect(thumb).to_be_visible()
        brightest = thumb.evaluate(CANVAS_MAX)
        label = page.inner_text("#rep-label")
        thumb_box = thumb.bounding_box()
        page.screenshot(path=str(SHOTS / "live-hover.png"))
        page.locator("#rep-frame").fill("0")  # the first snapshot
        epoch = page.inner_text("#rep-epoch")
        after = dot.get_attribute("cx"), dot.get_attribute("cy")

        pad = page.locator("#pad")
        pad.scroll_into_view_if_needed()
        b = pad.bounding_box()
        page.mouse.move(b["x"] + 30, b["y"] + 60)
        page.mouse.down()
        page.mouse.move(b["x"] + 250, b["y"] + 60, steps=15)
        page.mouse.move(b["x"] + 250, b["y"] + 90, steps=5)
        page.mouse.move(b["x"] + 30, b["y"] + 90, steps=15)
        page.mouse.up()
        page.wait_for_selector("#rep-neighbours figure", timeout=60_000)
        neighbours = page.locator("#rep-neighbours figure").count()
        loaded = page.eval_on_selector_all("#rep-neighbours img", "es => es.every(e => e.naturalWidth > 0)")
        page.locator("#rep-neighbours").scroll_into_view_if_needed()
        page.screenshot(path=str(SHOTS / "live-neighbours.png"), full_page=True)
    assert seen.errors == [] and seen.blocked == []
    assert n == n_test  # fewer than 2,000: every test image is on the map
    assert brightest > 150 and thumb_box["width"] >= 100  # the image drawn, not an empty canvas
    assert "test image #" in label and any(name in label for name in HOSTILE_NAMES)
    assert epoch.startswith("epoch 1") and after != before
    assert neighbours == 8 and loaded
