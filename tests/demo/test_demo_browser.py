"""The landing page and the tour in headless Chromium, opened from disk with every request that is not file: or
data: aborted: nothing blocked, no errors, every image decoded; clicking a card opens its report. Screenshots in
/tmp/shots/h1/."""

from __future__ import annotations

from pathlib import Path

from offline_browser import needs_chromium, offline_page

SHOTS = Path("/tmp/shots/h1")

pytestmark = needs_chromium


def test_landing_and_tour_open_offline_and_cards_open_their_reports(demo: tuple[Path, dict]) -> None:
    out, _ = demo
    SHOTS.mkdir(parents=True, exist_ok=True)
    with offline_page(1200, 900) as seen:
        page = seen.page
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
    assert seen.blocked == [] and seen.errors == []
    assert len(images["index"]) == len(hrefs) and len(images["tour"]) >= 15
    assert all(images["index"]) and all(images["tour"])
    assert [url for url, _ in opened] == [(out / h).as_uri() for h in hrefs]
    assert all(title.startswith("nnsee · ") for _, title in opened)
    assert tour_title == "nnsee · demo · guided tour"
