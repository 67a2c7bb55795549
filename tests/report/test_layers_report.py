"""The report's layer-by-layer section: which test images it shows, every layer's shape as the module gives it, the
prediction it states, the --layer-images option, and the page in real Chromium with the network blocked."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from offline_browser import needs_chromium, offline_page

from nnsee.cli import main
from nnsee.data.spec import load_splits
from nnsee.report import build_report
from nnsee.report.sections.common import ReportInput
from nnsee.report.sections.layers_section import MAX_MAPS, layers_section
from nnsee.train.run import load_run

SHOTS = Path("/tmp/shots/h3")


def by_hand(model: torch.nn.Sequential, x: np.ndarray) -> tuple[list[tuple[str, tuple[int, ...]]], np.ndarray]:
    """Each child of the run's nn.Sequential applied in turn: (name, output shape) and the logits."""
    h = torch.as_tensor(x[None], dtype=torch.float32)
    shapes = []
    with torch.no_grad():
        for name, child in model.eval().named_children():
            h = child(h)
            shapes.append((name, tuple(h.shape[1:])))
    return shapes, h[0].numpy()


def test_default_images_shapes_and_prediction(cnn_run: Path) -> None:
    run = load_run(cnn_run)
    splits = load_splits(run.data_spec)
    inp = ReportInput(run, splits)
    ctx = layers_section(inp)
    x_all = run.standardize(np.asarray(splits.test.images))
    labels = np.asarray(splits.test.labels)
    with torch.no_grad():
        predicted = run.model.eval()(torch.as_tensor(x_all)).argmax(1).numpy()
    right, wrong = np.flatnonzero(predicted == labels), np.flatnonzero(predicted != labels)
    other = wrong if len(wrong) else np.flatnonzero(labels != labels[right[0]])  # no mistake: another class
    expected = sorted({int(right[0]), int(other[0])})
    assert [im["index"] for im in ctx["images"]] == expected
    for im in ctx["images"]:
        shapes, logits = by_hand(run.model, x_all[im["index"]])
        assert [(layer["name"], layer["shape"]) for layer in im["layers"]] == [
            (n, " × ".join(map(str, s))) for n, s in shapes]
        p = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
        assert im["predicted"] == int(np.argmax(logits)) and im["probability"] == pytest.approx(p.max(), rel=1e-5)
        assert im["correct"] == (im["predicted"] == labels[im["index"]])
        assert all(layer["uri"].startswith("data:image/png;base64,") for layer in im["layers"])
        conv = next(layer for layer in im["layers"] if layer["kind"] == "Conv2d")
        assert conv["note"] is None  # 4 maps: all shown
    assert MAX_MAPS == 16


def test_chosen_images_option_and_refusal(cnn_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "r"
    result = CliRunner().invoke(main, ["report", str(cnn_run), "--out", str(out), "--layer-images", "2,5"])
    assert result.exit_code == 0, result.output
    html = (out / "index.html").read_text()
    assert 'id="layers-2"' in html and 'id="layers-5"' in html and html.count('class="layer"') > 10
    assert "The chosen test images" in html
    bad = CliRunner().invoke(main, ["report", str(cnn_run), "--out", str(tmp_path / "b"), "--layer-images", "2,999"])
    assert bad.exit_code != 0 and "no test image 999" in bad.output and "15 images (0..14)" in bad.output
    assert len(bad.output.strip().splitlines()) == 1 and not (tmp_path / "b" / "index.html").exists()


@needs_chromium
def test_layers_section_in_chromium_offline(cnn_run: Path, tmp_path: Path) -> None:
    index = build_report(cnn_run, tmp_path / "report", max_units=8)
    with offline_page() as seen:
        page = seen.page
        page.goto(index.as_uri())
        page.wait_for_load_state("load")
        images = page.eval_on_selector_all(
            "#layers ~ .layers img", "els => els.map(e => ({alt: e.alt, ok: e.complete && e.naturalWidth > 0}))")
        shapes = page.eval_on_selector_all(".layers .layer .muted", "els => els.map(e => e.textContent)")
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.locator(".layers").first.screenshot(path=str(SHOTS / "report-layers-cnn.png"))
    assert seen.blocked == [] and seen.errors == []
    assert len(images) >= 2 * 9 and all(i["ok"] for i in images), [i for i in images if not i["ok"]]
    assert "Conv2d · 4 × 8 × 8" in shapes and "Linear · 3" in shapes
