"""The widget in a real JupyterLab: a server started here on 127.0.0.1 (this venv's kernel, no news or update checks),
a notebook written here (two tiny runs with hostile class names, ``Explorer(...)`` as the last expression), opened in
Debian's headless Chromium, Run All from the menu; a stroke on the widget's canvas gives each run's prediction, a unit
click its card, the method dropdown recomputes, a bad upload one line. Every request stays on 127.0.0.1 (any other is
aborted and counted); no page errors. Screenshots in test-artifacts/widget-*.png."""

from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
LOOPBACK = "127.0.0.1"

pytest.importorskip("anywidget")
pytest.importorskip("jupyterlab")
pytest.importorskip("nbformat")
pytest.importorskip("ipykernel")

from notebook.jupyter_util import Lab, shared_runs  # noqa: E402
from tiny import HOSTILE_NAMES  # noqa: E402


def notebook(root: Path, runs: dict[str, Path]) -> str:
    import nbformat

    code = (f"import sys\nassert sys.prefix == {sys.prefix!r}, sys.prefix  # the kernel of this venv\n"
            "from nnsee.notebook import Explorer\n"
            f"Explorer([{str(runs['softmax'])!r}, {str(runs['mlp'])!r}])")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, root / "widget.ipynb")
    return "widget.ipynb"


def run_all(page, tries: int = 3, wait_s: float = 20) -> None:  # type: ignore[no-untyped-def]
    """Run > Run All Cells from the menu, again while the cell has not started (its prompt still ``[ ]``); a "Select
    Kernel" dialog (seen here on a fresh JupyterLab settings folder, though the notebook names python3) is accepted
    with its default, this venv's Python 3."""
    accept = page.locator(".jp-Dialog button.jp-mod-accept")
    prompt = page.locator(".jp-Notebook .jp-Cell .jp-InputPrompt").first
    for _ in range(tries):
        if accept.count():
            accept.first.click()
        page.click("li.lm-MenuBar-item:has-text('Run')")
        page.locator("li.lm-Menu-item", has_text=re.compile(r"^\s*Run All Cells\s*$")).click()
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if re.search(r"[0-9*]", prompt.inner_text()):  # [*]: queued or running, [1]: done
                return
            if accept.count():
                accept.first.click()
            time.sleep(0.5)
    raise AssertionError(f"JupyterLab did not start the cell after {tries} x Run All Cells")


def test_widget_in_jupyterlab(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{CHROMIUM} is missing (CI must install Debian's chromium)")
        pytest.skip(f"{CHROMIUM} is missing")
    sync_api = pytest.importorskip("playwright.sync_api")
    expect = sync_api.expect
    expect.set_options(timeout=30_000)  # answers from a kernel on a loaded machine, not 5 s
    runs = shared_runs(tmp_path_factory)
    name = notebook(tmp_path, runs)
    (tmp_path / "junk.png").write_bytes(b"not an image at all")
    ARTIFACTS.mkdir(exist_ok=True)
    errors: list[str] = []
    outside: list[str] = []
    sockets: list[str] = []
    seconds: dict[str, float] = {}
    lab = Lab(tmp_path)
    try:
        seconds["server"] = lab.wait(90)
        lab.start_kernel(name)
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.set_default_timeout(60_000)
                page.on("pageerror", lambda e: errors.append(str(e)))
                page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
                page.on("websocket", lambda ws: sockets.append(ws.url))

                def guard(route):  # type: ignore[no-untyped-def]
                    url = urlparse(route.request.url)
                    if url.scheme in ("data", "blob") or url.hostname == LOOPBACK:
                        route.continue_()
                    else:
                        outside.append(route.request.url)
                        route.abort()

                page.route("**/*", guard)
                start = time.monotonic()
                page.goto(f"{lab.base}/lab/tree/{name}?token={lab.token}")
                page.wait_for_selector(".jp-Notebook .jp-Cell")
                seconds["open"] = time.monotonic() - start
                page.screenshot(path=str(ARTIFACTS / "widget-opened.png"))
                page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']")
                seconds["kernel"] = time.monotonic() - start
                run_all(page)
                pad = page.locator(".nnsee-explorer canvas.nnsee-pad").first
                pad.wait_for()
                seconds["widget"] = time.monotonic() - start

                box = pad.bounding_box()
                assert box is not None
                for y in (20, 50):  # a thick band over the top quarter: class 0's rows
                    page.mouse.move(box["x"] + 20, box["y"] + y)
                    page.mouse.down()
                    page.mouse.move(box["x"] + 260, box["y"] + y, steps=15)
                    page.mouse.up()
                panes = page.locator(".nnsee-pane")
                expect(panes).to_have_count(2)
                for pane, run in zip(("softmax", "mlp"), ("softmax", "mlp"), strict=True):
                    prediction = page.locator(f".nnsee-pane[data-run='{run}'] .nnsee-prediction")
                    expect(prediction).to_have_text("predicted: " + HOSTILE_NAMES[0])  # as text, not markup
                    names = page.locator(f".nnsee-pane[data-run='{pane}'] .nnsee-probabilities .nnsee-name")
                    assert names.all_inner_texts() == HOSTILE_NAMES
                seconds["prediction"] = time.monotonic() - start
                assert page.locator(".nnsee-explorer script, .nnsee-explorer b").count() == 0
                page.screenshot(path=str(ARTIFACTS / "widget-draw.png"), full_page=True)

                page.locator(".nnsee-pane[data-run='mlp'] button.nnsee-unit").first.click()
                card = page.locator(".nnsee-card")
                expect(card.locator("h4")).to_contain_text("mlp: unit ")
                expect(card.locator(".nnsee-outgoing .nnsee-bar")).to_have_count(3)
                card.scroll_into_view_if_needed()  # the notebook scrolls inside its panel: bring the card up
                page.screenshot(path=str(ARTIFACTS / "widget-card.png"))

                page.select_option(".nnsee-explorer select.nnsee-view", "saliency")
                expect(page.locator(".nnsee-pane .nnsee-maps figcaption")).to_have_count(2)
                for caption in page.locator(".nnsee-pane .nnsee-maps figcaption").all_inner_texts():
                    assert caption.startswith("saliency (")
                page.screenshot(path=str(ARTIFACTS / "widget-saliency.png"), full_page=True)

                page.set_input_files(".nnsee-explorer input.nnsee-upload", str(tmp_path / "junk.png"))
                error = page.locator(".nnsee-explorer .nnsee-error")
                expect(error).to_have_text("error: not an image of a supported format (PNG, JPEG, WEBP, BMP, GIF, "
                                           "TIFF, PPM)")
                expect(panes).to_have_count(2)  # the last answer stays
                page.screenshot(path=str(ARTIFACTS / "widget-bad-upload.png"), full_page=True)

                page.click(".nnsee-explorer button.nnsee-clear")  # the kernel empties the results and the card
                expect(panes).to_have_count(0)
                expect(card).to_have_count(0)
                expect(error).to_have_text("")
            except Exception:
                page.screenshot(path=str(ARTIFACTS / "widget-failed.png"), full_page=True)
                raise
            finally:
                browser.close()
    finally:
        lab.stop()
    print("JupyterLab seconds:", {k: round(v, 1) for k, v in seconds.items()})
    assert outside == [], f"requests left 127.0.0.1: {outside}"
    assert sockets and all(urlparse(u).hostname == LOOPBACK for u in sockets), sockets
    # JupyterLab's own start-up noise (its debugger and subshell requests cancelled while the kernel connection is
    # still being set up) is not the widget's; every other page error or console error fails.
    ours = [e for e in errors if "Canceled future for" not in e]
    assert ours == [], ours
