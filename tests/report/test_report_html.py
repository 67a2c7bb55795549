"""The static report: self-contained, escaped, paged, and showing the right numbers."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
from tiny import HOSTILE_NAMES as HOSTILE

from nnsee.report import build_report
from nnsee.report.sections.gallery import pick_gallery


class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.text: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.urls += [v or "" for k, v in attrs if k in ("src", "href")]

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _parse(path: Path) -> _Collect:
    parser = _Collect()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


def test_report_is_self_contained_and_escapes_class_names(softmax_run: Path) -> None:
    index = build_report(softmax_run)
    assert index == softmax_run / "report" / "index.html"
    html = index.read_text(encoding="utf-8")
    page = _parse(index)
    assert "script" not in page.tags
    assert all(u.startswith(("data:image/", "#", "index.html", "units-", "confusion-")) for u in page.urls), page.urls
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    text = " ".join(page.text)
    for name in HOSTILE:
        assert name in text  # shown verbatim as text, once unescaped by the parser
    assert (softmax_run / "report" / "templates.png").stat().st_size > 0
    assert (softmax_run / "report" / "evolution.gif").read_bytes()[:6] == b"GIF89a"
    assert "Class templates: each output unit" in html


def test_mlp_report_pages_the_unit_cards(mlp_run: Path, tmp_path: Path) -> None:
    index = build_report(mlp_run, tmp_path / "r", max_units=8)
    pages = sorted(p.name for p in (tmp_path / "r").glob("*.html") if not p.name.startswith("confusion-"))
    assert pages == ["index.html", "units-2.html", "units-3.html"]  # 20 units, 8 per page
    html = index.read_text(encoding="utf-8")
    assert html.count('class="card"') == 8
    assert (tmp_path / "r" / "units-3.html").read_text(encoding="utf-8").count('class="card"') == 4
    assert "Effective class templates" in html and "Class → units" in html
    assert re.search(r"votes", html)


def test_gallery_picks_confident_mistakes_first() -> None:
    probabilities = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7], [0.99, 0.01]])
    labels = np.array([1, 1, 1, 0, 0])
    picked = pick_gallery(probabilities, labels, 4)
    assert picked[:2] == [(0, "confident mistake"), (3, "confident mistake")]
    assert picked[2:] == [(4, "correct"), (1, "correct")]


def test_cnn_report_shows_the_zeiler_fergus_views(cnn_run: Path, tmp_path: Path) -> None:
    index = build_report(cnn_run, tmp_path / "r")
    html = index.read_text(encoding="utf-8")
    for heading in ("First-layer filters", "Top 9 images per feature map of", "Occlusion (a grey square",
                    "Feature evolution during training", "Sanity check"):
        assert heading in html
    assert html.count("alt=\"top 9 images of map") == 10  # conv1 4 maps + conv2 6: every stage
    page = _parse(index)
    assert all(u.startswith(("data:image/", "#", "index.html", "units-", "confusion-")) for u in page.urls)
    assert "&lt;script&gt;" in html and "<script>alert" not in html
