"""The report's representation map in real Chromium, opened from disk with every non-file request blocked: hovering a
point shows its image (CSS only, no script), moving away hides it; no request leaves, no page error."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from offline_browser import needs_chromium, offline_page

from nnsee.report import build_report

SHOTS = Path("/tmp/shots/h7")

pytestmark = needs_chromium

VISIBLE_TIPS = "els => els.filter(e => getComputedStyle(e).visibility === 'visible').length"


def test_hovering_a_point_shows_its_image(mlp_run: Path, tmp_path: Path) -> None:
    from PIL import Image

    index = build_report(mlp_run, tmp_path / "report", max_units=4)
    html = index.read_text()
    assert "<script" not in html and 'id="representation"' in html
    SHOTS.mkdir(parents=True, exist_ok=True)
    with offline_page(1100, 800) as seen:
        page = seen.page
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
    assert seen.blocked == [] and seen.errors == []
    assert f"for {n} test images of" in " ".join(html.split())  # every sampled test image is a point
    assert shown == "visible" and others == 1 and hidden_after == 0
    assert tip_box["width"] > 50 and tip_box["height"] > 50
    assert pixels.std() > 10  # the image itself is drawn there, not an empty box
