"""The report's representation map in real Chromium, opened from disk with every non-file request blocked: hovering a
point shows its image (CSS only, no script), moving away hides it; no request leaves, no page error."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

from nnsee.report import build_report

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SHOTS = Path("/tmp/shots/h7")

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="apt-get install chromium (done by .ci/run)")

VISIBLE_TIPS = "els => els.filter(e => getComputedStyle(e).visibility === 'visible').length"


def test_hovering_a_point_shows_its_image(mlp_run: Path, tmp_path: Path) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    from PIL import Image

    index = build_report(mlp_run, tmp_path / "report", max_units=4)
    html = index.read_text()
    assert "<script" not in html and 'id="representation"' in html
    blocked: list[str] = []
    errors: list[str] = []
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 800})

            def route(r: object) -> None:
                url = r.request.url  # type: ignore[attr-defined]
                if url.startswith(("file:", "data:")):
                    r.continue_()  # type: ignore[attr-defined]
                else:
                    blocked.append(url)
                    r.abort()  # type: ignore[attr-defined]

            page.route("**/*", route)
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.goto(index.as_uri())
            page.wait_for_load_state("load")
            points = page.locator("svg.repmap g.pt")
            n = points.count()
            tips = page.locator("svg.repmap g.pt .tip")
            assert tips.evaluate_all(VISIBLE_TIPS) == 0
            point = points.last  # drawn last: nothing covers it
            point.scroll_into_view_if_needed()
            box = point.locator("circle").bounding_box()
            page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
            tip = point.locator(".tip")
            shown = tip.evaluate("e => getComputedStyle(e).visibility")
            tip_box = tip.locator("svg").bounding_box()
            pixels = np.asarray(Image.open(io.BytesIO(page.screenshot(clip=tip_box))).convert("L"), dtype=float)
            page.screenshot(path=str(SHOTS / "report-hover.png"))
            others = tips.evaluate_all(VISIBLE_TIPS)
            page.mouse.move(2, 2)
            hidden_after = tips.evaluate_all(VISIBLE_TIPS)
            page.screenshot(path=str(SHOTS / "report-map.png"), full_page=True)
        finally:
            browser.close()
    assert blocked == [] and errors == []
    assert f"for {n} test images of" in " ".join(html.split())  # every sampled test image is a point
    assert shown == "visible" and others == 1 and hidden_after == 0
    assert tip_box["width"] > 50 and tip_box["height"] > 50
    assert pixels.std() > 10  # the image itself is drawn there, not an empty box
