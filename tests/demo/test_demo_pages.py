"""The landing page and the tour: cards in the lecture's order, every link and anchor resolving, text escaped, the
pages self-contained (no script, no outside URL)."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

from nnsee.demo.landing import TEMPLATE as LANDING
from nnsee.demo.landing import Card
from nnsee.demo.page import render
from nnsee.lessons import OUTLINE


class Links(HTMLParser):
    """Every href, img src, element id and card title (h3 inside a.card) of a page, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []
        self.srcs: list[str] = []
        self.ids: set[str] = set()
        self.sections: list[str] = []
        self.cards: list[str] = []
        self.scripts = 0
        self._h3 = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if a.get("id"):
            self.ids.add(a["id"])
        if tag == "section" and a.get("id"):
            self.sections.append(a["id"])
        if tag == "a" and a.get("href"):
            self.hrefs.append(a["href"])
        if tag == "img":
            self.srcs.append(a.get("src") or "")
        self.scripts += tag == "script"
        self._h3 = tag == "h3"

    def handle_data(self, data: str) -> None:
        if self._h3 and data.strip():
            self.cards.append(data.strip())
            self._h3 = False


def parse(path: Path) -> Links:
    links = Links()
    links.feed(path.read_text(encoding="utf-8"))
    return links


def check_links(page: Path) -> int:
    """Assert that every relative link of ``page`` names an existing file and, with a #fragment, an id in it."""
    checked = 0
    for href in parse(page).hrefs:
        parts = urlsplit(href)
        assert not parts.scheme and not parts.netloc, href
        target = (page.parent / unquote(parts.path)).resolve() if parts.path else page
        assert target.is_file(), href
        if parts.fragment:
            assert parts.fragment in parse(target).ids, href
        checked += 1
    return checked


def test_landing_cards_follow_the_outline_and_every_link_resolves(demo: tuple[Path, dict]) -> None:
    out, _ = demo
    index = parse(out / "index.html")
    expected = list(dict.fromkeys(s.run for s in OUTLINE))
    assert index.cards == expected  # no Fashion-MNIST runs at the test size
    assert index.hrefs[0] == "tour.html"
    assert [h.split("/")[0] for h in index.hrefs[1:]] == expected
    assert len(index.srcs) == len(expected) and all(s.startswith("data:image/png;base64,") for s in index.srcs)
    assert check_links(out / "index.html") == len(expected) + 1
    assert index.scripts == 0


def test_tour_walks_the_outline_and_links_into_each_reports_section(demo: tuple[Path, dict]) -> None:
    out, entries = demo
    tour = parse(out / "tour.html")
    assert tour.sections == [s.key for s in OUTLINE]
    section_links = [h for h in tour.hrefs if "/" in h]
    assert [h.split("#")[0] for h in section_links] == [
        entries[s.run].report.relative_to(out).as_posix() for s in OUTLINE]
    assert [urlsplit(h).fragment for h in section_links] == [s.anchor for s in OUTLINE]
    assert check_links(out / "tour.html") == len(tour.hrefs)
    assert tour.scripts == 0 and all(s.startswith("data:image/png;base64,") for s in tour.srcs)
    text = (out / "tour.html").read_text(encoding="utf-8")
    for s in OUTLINE:
        assert s.questions[0].replace("'", "&#39;") in text


def test_landing_text_is_escaped() -> None:
    hostile = Card("<script>alert(1)</script>", ['"><img src=x>'], "a & b", 0.5, "x/index.html", None)
    html = render(LANDING, title="<b>", cards=[hostile])
    assert "<script>alert" not in html and "&lt;script&gt;" in html and '"><img src=x>' not in html
    assert "<title>nnsee · &lt;b&gt;</title>" in html
