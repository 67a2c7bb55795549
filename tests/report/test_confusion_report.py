"""The report's confusion drill-down: each cell page lists exactly the test images of its cell (membership computed
here by a plain forward pass and argmax), every non-empty cell is linked, hostile class names stay text, the cap is
said, and above 30 classes the top-confusions list links to the same pages."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from offline_browser import needs_chromium, offline_page
from tiny import HOSTILE_NAMES, banded_npz

import nnsee.report.sections.confusion_section as confusion_section
from nnsee.data import load_data
from nnsee.models import build_model
from nnsee.report import build_report
from nnsee.train import TrainConfig, fit, load_run

LINK = re.compile(r'href="confusion-(\d+)-(\d+)\.html"')


def members(run_path: Path, npz: Path) -> tuple[dict[tuple[int, int], list[int]], int]:
    """Each cell's test indices, in order, from a plain forward pass of the loaded model."""
    run = load_run(run_path)
    test = load_data(str(npz), seed=0).test
    with torch.no_grad():
        predicted = run.model.eval()(torch.as_tensor(run.standardize(np.asarray(test.images)))).argmax(1).numpy()
    cells: dict[tuple[int, int], list[int]] = {}
    for n, (i, j) in enumerate(zip(test.labels.tolist(), predicted.tolist(), strict=True)):
        cells.setdefault((i, j), []).append(n)
    return cells, len(run.class_names)


def page_indices(html: str) -> list[int]:
    return [int(v) for v in re.findall(r'data-index="(\d+)"', html)]


def page_count(html: str) -> int:
    return int(re.search(r"<p>([\d,]+) test images? of class", html).group(1).replace(",", ""))


@pytest.fixture(scope="module")
def confused(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A noisy banded set (hostile class names) and three runs that confuse its classes: mistakes off the diagonal."""
    root = tmp_path_factory.mktemp("confused")
    banded_npz(root / "noisy.npz", 150, 8, width=2, noise=1.0, signal=0.1, class_names=HOSTILE_NAMES)
    splits = load_data(str(root / "noisy.npz"), seed=0)
    out = {"npz": root / "noisy.npz"}
    for name, options in [("softmax", {}), ("mlp", {"hidden": [10]}), ("cnn", {"channels": [3], "kernel": 3})]:
        torch.manual_seed(0)
        model = build_model(name, splits.shape, splits.train.n_classes, **options)
        fit(model, splits, TrainConfig(epochs=2, batch_size=16, lr=0.01), root / name, progress=False)
        out[name] = root / name
    return out


@pytest.mark.parametrize("name", ["softmax", "mlp", "cnn"])
def test_each_cell_page_lists_exactly_the_test_images_of_its_cell(name: str, confused: dict[str, Path],
                                                                   tmp_path: Path) -> None:
    run = confused[name]
    index = build_report(run, tmp_path / "r", max_units=4)
    cells, k = members(run, confused["npz"])
    assert sum(i != j for i, j in cells) >= 2  # mistakes: the test sees cells off the diagonal
    html = index.read_text(encoding="utf-8")
    matrix_part = html[html.index("Confusion matrix (test"):html.index('<h2 id="confusion"')]
    assert {(int(i), int(j)) for i, j in LINK.findall(matrix_part)} == set(cells)  # every non-empty cell, no other
    pages = sorted(p.name for p in index.parent.glob("confusion-*.html"))
    assert pages == sorted(f"confusion-{i}-{j}.html" for i, j in cells)
    for (i, j), want in cells.items():
        page = (index.parent / f"confusion-{i}-{j}.html").read_text(encoding="utf-8")
        assert page_count(page) == len(want)
        assert page_indices(page) == want[: confusion_section.CAP]
        assert page.startswith("<!doctype html>") and "<title>nnsee · " in page[:1000]
        assert "<script" not in page.replace("&lt;script", "")  # no script of ours; the hostile name is text
        assert "default-src 'none'; img-src data:" in page  # the report's CSP: no script, nothing fetched
        for name in (HOSTILE_NAMES[i], HOSTILE_NAMES[j]):
            assert name not in page  # never as markup
        assert '<a href="index.html#overview">' in page


def test_hostile_names_are_escaped_on_the_cell_pages(softmax_run: Path, tmp_path: Path) -> None:
    index = build_report(softmax_run, tmp_path / "r", max_units=4)
    page = next(index.parent.glob("confusion-0-*.html")).read_text(encoding="utf-8")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>alert(1)" not in page


def test_the_cap_is_kept_and_said(mlp_run: Path, hostile_npz: Path, tmp_path: Path,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(confusion_section, "MAX_SHOWN", 9)  # the cells of these runs hold up to ~20 images
    monkeypatch.setattr(confusion_section, "_PIXELS", 9 * 64)
    index = build_report(mlp_run, tmp_path / "r", max_units=4)
    cells, _ = members(mlp_run, hostile_npz)
    cap = confusion_section.per_cell_cap(np.array([len(v) for v in cells.values()]), 9)
    shown = 0
    for (i, j), want in cells.items():
        page = (index.parent / f"confusion-{i}-{j}.html").read_text(encoding="utf-8")
        assert page_indices(page) == want[:cap]
        shown += len(page_indices(page))
        if len(want) > cap:
            assert f"Showing {cap} of {len(want)}" in page
    assert shown <= max(9, len(cells))


SCRIPT_CLASSES = 40


def test_many_classes_link_the_top_confusions(tmp_path: Path) -> None:
    k = SCRIPT_CLASSES
    y = np.repeat(np.arange(k), 6)
    x = np.random.default_rng(0).uniform(0, 1, size=(len(y), 4, 4)).astype(np.float32)
    np.savez(tmp_path / "many.npz", x=x, y=y)
    splits = load_data(str(tmp_path / "many.npz"), seed=0)
    torch.manual_seed(0)
    model = build_model("softmax", splits.shape, k)
    fit(model, splits, TrainConfig(epochs=1, batch_size=64, lr=0.01), tmp_path / "run", progress=False)
    index = build_report(tmp_path / "run", tmp_path / "r", max_units=4)
    html = index.read_text(encoding="utf-8")
    assert "<h3>Top confusions (test)</h3>" in html
    top = html[html.index("<h3>Top confusions (test)</h3>"):html.index("<h3>Accuracy per class")]
    listed = [(int(i), int(j)) for i, j in LINK.findall(top)]
    cells, _ = members(tmp_path / "run", tmp_path / "many.npz")
    mistakes = sorted(((-len(v), i, j) for (i, j), v in cells.items() if i != j))
    assert listed == [(i, j) for _, i, j in mistakes[:30]]  # the largest, in order, each linked
    pages = sorted(p.name for p in index.parent.glob("confusion-*.html"))
    assert pages == sorted(f"confusion-{i}-{j}.html" for i, j in listed)
    for i, j in listed:
        page = (index.parent / f"confusion-{i}-{j}.html").read_text(encoding="utf-8")
        assert page_indices(page) == cells[(i, j)][: confusion_section.CAP]
        assert page_count(page) == len(cells[(i, j)])


SHOTS = Path("/tmp/shots/h2")
# Every sprite of the page decoded: the CSS background images (the page has no <img> per test image).
DECODE = """async els => Promise.all(els.map(async e => {
  const url = getComputedStyle(e).backgroundImage.slice(5, -2), im = new Image(); im.src = url;
  try { await im.decode(); return im.naturalWidth > 0 && url.startsWith('data:image/png'); } catch (_) { return false; }
}))"""


@needs_chromium
def test_click_a_cell_in_chromium_offline(confused: dict[str, Path], tmp_path: Path) -> None:
    index = build_report(confused["mlp"], tmp_path / "r", max_units=4)
    cells, _ = members(confused["mlp"], confused["npz"])
    i, j = max((c for c in cells if c[0] != c[1]), key=lambda c: len(cells[c]))  # the largest mistake
    SHOTS.mkdir(parents=True, exist_ok=True)
    with offline_page(1100, 800) as seen:
        page = seen.page
        page.goto(index.as_uri())
        page.locator(f'a.cell[href="confusion-{i}-{j}.html"]').first.click()
        page.wait_for_url(f"**/confusion-{i}-{j}.html")
        page.wait_for_load_state("load")
        shots = page.locator("figure.shot")
        assert shots.count() == min(len(cells[(i, j)]), confusion_section.CAP)
        assert [int(v) for v in shots.evaluate_all("els => els.map(e => e.dataset.index)")] == cells[(i, j)][:24]
        decoded = page.locator(".pic").evaluate_all(DECODE)
        assert len(decoded) == 2 * shots.count() and all(decoded)  # each image and its map
        assert HOSTILE_NAMES[i] in page.inner_text("h1")  # the name as text
        page.screenshot(path=str(SHOTS / "report-cell.png"), full_page=True)
        page.click("text=← back to the report")
        page.wait_for_load_state("load")
        assert page.locator("a.cell").count() == len(cells)
    assert seen.blocked == [] and seen.errors == []


def test_the_palette_sprite_draws_maps_as_the_diverging_colormap() -> None:
    from nnsee.render import NAN_RGB, signed_to_rgb

    v = np.concatenate([np.linspace(-2, 2, 401), [0.0, np.inf, -np.inf]])[None]
    drawn = confusion_section._palette()[confusion_section._map_index(v, 1.0)]
    want = signed_to_rgb(v, 1.0)
    assert np.abs(drawn.astype(int) - want.astype(int)).max() <= 12  # 128 of the map's 256 colours
    assert (confusion_section._palette()[confusion_section._map_index(np.array([np.nan]), 1.0)] == NAN_RGB).all()
    grays = confusion_section._palette()[: confusion_section._GRAYS]
    assert grays[0].tolist() == [0, 0, 0] and grays[-1].tolist() == [255, 255, 255]
