"""``nnsee serve --watch RUN`` in headless Chromium (Debian's, via Playwright): the server starts before the run
exists (the waiting page), then this test trains the run epoch by epoch through nnsee's fit and resume while the page
polls: each epoch shows (the epoch number, a point more on the curve, new template and unit images); a half-written
run.json keeps the page on the last epoch until it is whole. Screenshots in /tmp/shots/h8/."""

from __future__ import annotations

import base64
import os
import re
from pathlib import Path
from urllib.parse import urlparse

import pytest
import torch
from serve.serve_util import start_server, stop
from tiny import make_splits

from nnsee.models import build_model
from nnsee.train import TrainConfig, fit, resume

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SHOTS = Path("/tmp/shots/h8")
SPLITS = make_splits(n_per_class=30, shape=(1, 12, 12))


def next_epoch(out: Path) -> None:
    if not (out / "run.json").exists():
        torch.manual_seed(0)
        model = build_model("mlp", SPLITS.shape, 3, hidden=[8], activation="tanh")
        fit(model, SPLITS, TrainConfig(epochs=1, batch_size=8, lr=0.05), out, progress=False)
    else:
        resume(out, epochs=1, data=SPLITS, progress=False)


def curve_points(src: str) -> int:
    """Points of the first series (train) in a data: URI of the learning-curve SVG."""
    svg = base64.b64decode(src.split(",", 1)[1]).decode()
    lines = re.findall(r'<polyline fill="none" stroke="[^"]+" stroke-width="1.6" points="([^"]+)"', svg)
    return len(lines[0].split()) if lines else 0


def test_the_page_follows_a_run_trained_alongside(tmp_path: Path) -> None:
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{CHROMIUM} is missing (CI must install Debian's chromium)")
        pytest.skip(f"{CHROMIUM} is missing")
    sync_api = pytest.importorskip("playwright.sync_api")
    expect = sync_api.expect
    SHOTS.mkdir(parents=True, exist_ok=True)
    out = tmp_path / "later" / "run"  # not there when the server starts
    server = start_server([], "--watch", str(out))
    errors: list[str] = []
    outside: list[str] = []
    try:
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1100, "height": 900})
                page.on("pageerror", lambda e: errors.append(str(e)))
                page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)

                def guard(route):  # noqa: ANN001
                    url = urlparse(route.request.url)
                    if url.scheme == "data" or (url.scheme == "http" and url.hostname == "127.0.0.1"):
                        route.continue_()
                    else:
                        outside.append(route.request.url)
                        route.abort()

                page.route("**/*", guard)
                page.goto(server.base + "/")
                assert page.url.endswith("/watch")
                expect(page.locator("#watch-status")).to_contain_text("waiting for a run in run")
                expect(page.locator("#epoch")).to_have_text("epoch –")
                page.screenshot(path=str(SHOTS / "watch-waiting.png"), full_page=True)

                seen: list[tuple[str, str]] = []
                for epoch in (1, 2, 3):
                    next_epoch(out)
                    expect(page.locator("body")).to_have_attribute("data-epoch", str(epoch), timeout=15000)
                    expect(page.locator("#epoch")).to_contain_text(f"epoch {epoch}")
                    assert page.get_attribute("body", "data-points") == str(epoch)
                    if epoch > 1:  # one point a line from the second epoch on: a point more each epoch
                        assert curve_points(page.get_attribute("#loss", "src")) == epoch
                    assert page.locator("#templates figure").count() == 3
                    seen.append((page.get_attribute("#templates figure img >> nth=0", "src"),
                                 page.get_attribute("#units", "src")))
                    page.screenshot(path=str(SHOTS / f"watch-epoch-{epoch}.png"), full_page=True)
                    if epoch == 2:  # a run.json half written in place: the page stays on epoch 2
                        text = (out / "run.json").read_text()
                        (out / "run.json").write_text(text[: len(text) // 2])
                        expect(page.locator("#watch-status")).to_contain_text("retrying", timeout=15000)
                        assert page.get_attribute("body", "data-epoch") == "2"
                        page.screenshot(path=str(SHOTS / "watch-half-written.png"), full_page=True)
                        (out / "run.json").write_text(text)
                        expect(page.locator("#watch-status")).to_have_text("", timeout=15000)
                assert len({t for t, _ in seen}) == 3 and len({u for _, u in seen}) == 3
            finally:
                browser.close()
    finally:
        stop(server)
    assert errors == []
    assert outside == []
