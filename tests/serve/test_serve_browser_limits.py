"""The live page in headless Chromium at its limits: a 12-MP phone photo (a 5 MB JPEG) is scaled down by the page
and explained; an image the browser cannot scale (a 3 MiB TIFF) is refused with the server's 413, shown as such;
a 503 shows "busy, retry" (not a JSON parse error); class and run names with a right-to-left override are isolated
(each text node holding one sits in an isolating element or between FSI and PDI)."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from offline_browser import ARGS as CHROMIUM_ARGS
from PIL import Image
from serve.serve_util import Server, start_server, stop
from serve.test_serve_browser import CHROMIUM

from nnsee.data import load_data
from nnsee.models import build_model
from nnsee.train import TrainConfig, fit

RLO = "\u202e"
NAMES = [f"top{RLO}gnorw", "middle", f"low{RLO}!"]
RUN = f"run{RLO}x"

#: The page's text nodes holding U+202E that are not isolated: the RLO neither between FSI/LRI/RLI and PDI in the
#: text, nor the text exactly one of ``names`` alone in an element that isolates it (the nearest ancestor whose
#: computed unicode-bidi is isolate, isolate-override or plaintext, as <bdi> and, by the HTML rendering rules, block
#: elements are, holding nothing else: an isolating <h2> holding "name (mlp)" lets the name reorder " (mlp)").
UNISOLATED = """(names) => {
  const open = new Set(["\\u2066", "\\u2067", "\\u2068"]), bad = [];
  const isolating = (e) => ["isolate", "isolate-override", "plaintext"].includes(getComputedStyle(e).unicodeBidi);
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    if (!n.data.includes("\\u202e")) continue;
    let depth = 0, inside = true;
    for (const c of n.data) {
      if (open.has(c)) depth++; else if (c === "\\u2069") depth = Math.max(0, depth - 1);
      else if (c === "\\u202e" && depth === 0) inside = false;
    }
    let e = n.parentElement;
    while (e && !isolating(e)) e = e.parentElement;
    const alone = names.includes(n.data) && e && e.textContent === n.data;
    if (!inside && !alone) bad.push(n.parentElement.tagName + ": " + n.data);
  }
  return bad;
}"""


@pytest.fixture(scope="module")
def rtl_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """An MLP over 8x8 bands whose class names carry right-to-left overrides."""
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 0.2, size=(150, 8, 8)).astype(np.float32)
    y = np.repeat(np.arange(3), 50)
    for i, k in enumerate(y):
        x[i, 2 * k : 2 * k + 3] += 0.8
    root = tmp_path_factory.mktemp("rtl")
    np.savez(root / "rtl.npz", x=x, y=y, class_names=np.array(NAMES))
    splits = load_data(str(root / "rtl.npz"), seed=0)
    torch.manual_seed(0)
    model = build_model("mlp", splits.shape, 3, hidden=[12])
    fit(model, splits, TrainConfig(epochs=6, batch_size=16, lr=0.01), root / RUN, progress=False)
    server = start_server([root / RUN])
    yield server
    stop(server)


@pytest.fixture
def page(rtl_server: Server) -> Iterator:  # type: ignore[type-arg]
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{CHROMIUM} is missing (CI must install Debian's chromium)")
        pytest.skip(f"{CHROMIUM} is missing")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.errors = []
            page.on("pageerror", lambda e: page.errors.append(str(e)))
            page.goto(rtl_server.base + "/")
            page.wait_for_selector("#templates figure")
            yield page
        finally:
            browser.close()


def _expect(page):  # type: ignore[no-untyped-def]
    return pytest.importorskip("playwright.sync_api").expect(page)


def _photo(path: Path, band: int) -> Path:
    """A 4000 x 3000 (12-MP) JPEG of noise with class ``band``'s rows bright: over 2 MiB as it is."""
    rng = np.random.default_rng(1)
    a = rng.integers(0, 60, size=(3000, 4000, 3), dtype=np.uint8)
    a[:, 500:3500][2 * band * 375 : (2 * band + 3) * 375] = 255
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, "JPEG", quality=95)
    path.write_bytes(buf.getvalue())
    assert path.stat().st_size > 2 * 2**20
    return path


def test_a_12_mp_photo_is_scaled_down_by_the_page(page, tmp_path):
    sent: list[dict[str, str]] = []
    page.on("requestfinished", lambda r: sent.append(r.all_headers()) if "/api/explain" in r.url else None)
    page.set_input_files("#upload", str(_photo(tmp_path / "phone.jpg", 0)))
    _expect(page.locator(".pane .prediction")).to_contain_text("top")
    (headers,) = sent  # one request: the original (over 2 MiB) would have been a 413
    assert headers["content-type"] == "image/png" and int(headers["content-length"]) <= 2 * 2**20
    _expect(page.locator("#upload-note")).to_have_text("scaled from 4000×3000 to 1024×768 to send")
    assert page.errors == []


def test_an_upload_over_the_limit_shows_the_413(page, tmp_path):
    """Chromium cannot decode TIFF, so the page sends the file as it is; the server refuses it from its length."""
    rng = np.random.default_rng(2)
    tiff = tmp_path / "scan.tif"
    Image.fromarray(rng.integers(0, 256, size=(1100, 1000, 3), dtype=np.uint8)).save(tiff, "TIFF")
    assert tiff.stat().st_size > 3 * 2**20
    statuses: list[int] = []
    page.on("response", lambda r: statuses.append(r.status) if "/api/explain" in r.url else None)
    page.set_input_files("#upload", str(tiff))
    _expect(page.locator("#status")).to_contain_text("too large")
    _expect(page.locator("#status")).to_contain_text("2 MiB")
    assert statuses == [413]
    assert page.errors == []


def test_a_503_shows_busy_retry(page, tmp_path):
    """A 503 from uvicorn or the limits may be plain text: the page says busy, never a JSON parse error."""
    page.route("**/api/explain*", lambda route: route.fulfill(status=503, body="Service Unavailable",
                                                              content_type="text/plain"))
    page.route("**/api/runs/*/units/*", lambda route: route.fulfill(status=503, body="Service Unavailable",
                                                                    content_type="text/plain"))
    png = tmp_path / "small.png"
    Image.new("L", (64, 64), 255).save(png)
    page.set_input_files("#upload", str(png))
    _expect(page.locator("#status")).to_contain_text("busy, retry")
    page.click("#unit-next")
    _expect(page.locator("#card")).to_contain_text("busy, retry")
    assert "JSON" not in page.inner_text("body")
    assert page.errors == []


def test_right_to_left_names_are_isolated(page, tmp_path):
    a = np.zeros((64, 64), np.uint8)
    a[0:24] = 255  # class 0's band: the maps are labelled with NAMES[0]
    png = tmp_path / "band.png"
    Image.fromarray(a).save(png)
    page.set_input_files("#upload", str(png))
    _expect(page.locator(".pane .prediction")).to_contain_text("top")
    page.locator("button.unit").first.click()
    page.wait_for_selector("#card h2")
    shown = page.inner_text("body")
    assert all(n in shown for n in NAMES)  # bars, prediction, card, templates: every name is on the page
    assert page.evaluate(UNISOLATED, [*NAMES, RUN]) == []
    page.select_option("#view", "smoothgrad")  # a map labelled by the server: "smoothgrad (NAME)"
    _expect(page.locator(".pane .maps figcaption")).to_contain_text("smoothgrad (")
    assert page.evaluate(UNISOLATED, [*NAMES, RUN]) == []
    assert page.errors == []
