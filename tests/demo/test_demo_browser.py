"""The landing page and the tour in headless Chromium, opened from disk with every request that is not file: or
data: aborted: nothing blocked, no errors, every image decoded; clicking a card opens its report. Screenshots in
/tmp/shots/h1/."""

from __future__ import annotations

from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SHOTS = Path("/tmp/shots/h1")

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="apt-get install chromium (done by .ci/run)")


def test_landing_and_tour_open_offline_and_cards_open_their_reports(demo: tuple[Path, dict]) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    out, _ = demo
    blocked: list[str] = []
    errors: list[str] = []
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})

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
            images: dict[str, list[bool]] = {}
            for name in ("index", "tour"):
                page.goto((out / f"{name}.html").as_uri())
                page.wait_for_load_state("load")
                images[name] = page.eval_on_selector_all("img", "els => els.map(e => e.complete && e.naturalWidth > 0)")
                page.screenshot(path=str(SHOTS / f"demo-{name}.png"), full_page=True)
            page.goto((out / "index.html").as_uri())
            hrefs = page.eval_on_selector_all("a.card", "els => els.map(e => e.getAttribute('href'))")
            opened = []
            for i in range(len(hrefs)):
                page.goto((out / "index.html").as_uri())
                page.locator("a.card").nth(i).click()
                page.wait_for_load_state("load")
                opened.append((page.url, page.title()))
            page.goto((out / "index.html").as_uri())
            page.locator("a.tourlink").click()
            page.wait_for_load_state("load")
            tour_title = page.title()
        finally:
            browser.close()
    assert blocked == [] and errors == []
    assert len(images["index"]) == len(hrefs) and len(images["tour"]) >= 15
    assert all(images["index"]) and all(images["tour"])
    assert [url for url, _ in opened] == [(out / h).as_uri() for h in hrefs]
    assert all(title.startswith("nnsee · ") for _, title in opened)
    assert tour_title == "nnsee · demo · guided tour"
