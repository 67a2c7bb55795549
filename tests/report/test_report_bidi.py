"""Right-to-left override characters in class names cannot reorder the report around them: no bidi control reaches
the page, and every class name stands between FSI and PDI (the plain-text <bdi>), in text, attributes and SVG alike.
In a real Chromium, the words after such a name read left to right."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import pytest
import torch
from tiny import banded_npz

from nnsee.data import load_data
from nnsee.models import build_model
from nnsee.report import build_report
from nnsee.train import TrainConfig, fit

NAMES = ["cat\u202e 99%", "\u2067dog", "\u05e9\u05dc\u05d5\u05dd", "emb\u202bed\u202c"]  # RLO, RLI, Hebrew, RLE..PDF
SHOWN = ["cat 99%", "dog", "\u05e9\u05dc\u05d5\u05dd", "embed"]
# Unicode's explicit bidi formatting classes, read from the character database (not from nnsee's own list).
EXPLICIT = {"LRE", "RLE", "LRO", "RLO", "PDF", "LRI", "RLI"}
FSI, PDI = "\u2068", "\u2069"
CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="module")
def bidi_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("bidi")
    banded_npz(root / "bidi.npz", 12, 8, width=2, n_classes=4, class_names=NAMES)
    splits = load_data(str(root / "bidi.npz"), seed=0)
    torch.manual_seed(0)
    model = build_model("mlp", splits.shape, 4, hidden=[6])
    fit(model, splits, TrainConfig(epochs=2, batch_size=16, lr=0.05, snapshots=[0, 2]), root / "run", progress=False)
    return build_report(root / "run", root / "report", max_units=4)


def test_no_bidi_control_reaches_the_page_and_every_name_is_isolated(bidi_report: Path) -> None:
    for page in sorted(bidi_report.parent.glob("*.html")):
        html = page.read_text(encoding="utf-8")
        controls = {unicodedata.name(c) for c in html if unicodedata.bidirectional(c) in EXPLICIT}
        assert not controls, (page.name, controls)
        assert not set(html) & {"\u200e", "\u200f", "\u061c"}
        depth = 0
        for c in html:
            depth += (c == FSI) - (c == PDI)
            assert depth >= 0
        assert depth == 0, page.name
        text = re.sub(r"data:[^\"]*", "", html)  # images' base64 may spell 'dog'
        found = 0
        for name in SHOWN:
            for m in re.finditer(re.escape(name), text):
                found += 1
                assert text[m.start() - 1] == FSI and text[m.end()] == PDI, text[m.start() - 40:m.end() + 9]
        assert found >= (2 if page.name.startswith("confusion-") else 8), page.name  # a cell page names its 2 classes


@pytest.mark.skipif(not CHROMIUM.exists(), reason="apt-get install chromium (done by .ci/run)")
def test_text_after_an_override_name_reads_left_to_right_in_a_browser(bidi_report: Path) -> None:
    """The gallery's 'true <b>NAME</b> · predicted ...' line: the letters of 'predicted' after the name lie left to
    right (an unisolated U+202E in the name drew them right to left)."""
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--headless", "--no-sandbox"])
        try:
            page = browser.new_page()
            page.goto(bidi_report.as_uri())
            order = page.evaluate("""() => {
                const out = [];
                for (const b of document.querySelectorAll('.item b')) {
                    const next = b.nextSibling;
                    const after = next ? next.textContent : '';
                    if (!b.textContent.includes('cat') || !after.startsWith(' · predicted')) continue;
                    const at = i => { const r = document.createRange(); r.setStart(next, i); r.setEnd(next, i + 1);
                                      return r.getBoundingClientRect().left; };
                    out.push([at(3), at(11)]);  // the 'p' and the last 'd' of ' · predicted '
                }
                return out;
            }""")
        finally:
            browser.close()
    assert order, "no gallery line with the override class as the true class"
    assert all(p_left < d_left for p_left, d_left in order), order
