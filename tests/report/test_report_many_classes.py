"""Reports for many classes: bounded views that say what they leave out, a main page of a few hundred KB, under a
memory limit; small reports keep every class."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from nnsee.render import bar_chart_svg
from nnsee.report.sections.common import MAX_BARS, MAX_CLASSES, class_bars_svg
from nnsee.report.sections.overview import _confusion_summary

# One subprocess under a 3 GiB address-space limit: 1,100 classes of three 4×4 images, a softmax, an MLP and a small
# CNN trained one epoch each, and their reports. The Run is built from what training wrote (run.json read here), so
# the report alone is under test, whatever limit the loader puts on run.json.
SCRIPT = """
import json, resource, sys, time
from pathlib import Path
resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))
import numpy as np, torch
from nnsee.data import load_data
from nnsee.models import build_model
from nnsee.report import build_report
from nnsee.train import TrainConfig, fit
from nnsee.train.run import Run

root, k = Path(sys.argv[1]), int(sys.argv[2])
y = np.repeat(np.arange(k), 3)
x = np.random.default_rng(0).uniform(0, 1, size=(len(y), 4, 4)).astype(np.float32)
np.savez(root / "many.npz", x=x, y=y)
splits = load_data(str(root / "many.npz"), seed=0)
out = {}
for name, options in [("softmax", {}), ("mlp", {"hidden": [8]}), ("cnn", {"channels": [3], "kernel": 3})]:
    torch.manual_seed(0)
    model = build_model(name, splits.shape, k, **options)
    result = fit(model, splits, TrainConfig(epochs=1, batch_size=64, lr=0.01), root / name, progress=False)
    run = Run(root / name, result.model, json.loads((root / name / "run.json").read_text(encoding="utf-8")))
    started = time.perf_counter()
    index = build_report(run, root / name / "report", splits=splits)
    out[name] = {"index": str(index), "seconds": time.perf_counter() - started}
print(json.dumps(out))
"""

CLASSES = 1_100  # above 1,024: one grid of every class's tile used to be refused


@pytest.fixture(scope="module")
def many(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("many")
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(SCRIPT), str(root), str(CLASSES)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    reports = json.loads(done.stdout.strip().splitlines()[-1])
    return {name: Path(r["index"]).read_text(encoding="utf-8") for name, r in reports.items()}


@pytest.mark.parametrize("name", ["softmax", "mlp", "cnn"])
def test_a_many_class_main_page_is_small_and_says_what_it_leaves_out(many: dict[str, str], name: str) -> None:
    html = many[name]
    assert len(html.encode("utf-8")) < 5 << 20
    assert len(html.encode("utf-8")) < 1 << 20  # in fact a few hundred KB for tiny images
    assert "Confusion matrix (test" not in html and "<h3>Top confusions (test)</h3>" in html
    assert re.search(r"showing the 30 largest of [\d,]+ pairs of a true and a predicted class with mistakes", html)
    assert re.search(r"showing the 30 classes with the lowest accuracy of [\d,]+ classes with test images", html)
    assert f"showing the first 30 classes of {CLASSES:,}" in html  # the sample images
    assert html.count('alt="examples of ') == MAX_CLASSES


def test_many_class_templates_units_and_gallery_are_bounded(many: dict[str, str]) -> None:
    softmax, mlp = many["softmax"], many["mlp"]
    assert f"showing the templates of the first 100 classes of {CLASSES:,}" in softmax
    assert softmax.count('alt="template of ') == 2 * 100  # shared and own scale
    assert f"largest of {CLASSES:,})" in softmax  # the gallery's probabilities: the top ones
    assert mlp.count('alt="effective template of ') == MAX_CLASSES
    assert f"with {CLASSES:,} classes, each card&#39;s charts show the {MAX_BARS} classes of largest |value|" in mlp
    assert f"largest |values| of {CLASSES:,})" in mlp and "weights: [" not in mlp


def test_many_class_cnn_legend_lists_the_classes_on_the_maps(many: dict[str, str]) -> None:
    html = many["cnn"]
    assert re.search(rf"showing the colours of the \d+ classes these maps show of {CLASSES:,}", html)
    assert html.count("display:inline-block;width:10px") <= MAX_CLASSES


def test_top_confusions_are_the_largest_off_diagonal_counts_with_their_share_of_the_row() -> None:
    k = MAX_CLASSES + 5
    matrix = np.eye(k, dtype=np.int64) * 10
    matrix[3, 7], matrix[3, 3] = 6, 4  # class 3: 6 of 10 called 7
    matrix[9, 1], matrix[9, 9] = 2, 8
    matrix[20, 20] = 0  # no test image: not ranked
    names = [f"c{i}" for i in range(k)]
    summary = _confusion_summary(matrix, names)
    assert [(c["true"], c["predicted"], c["count"]) for c in summary["confusions"]] == [("c3", "c7", 6),
                                                                                        ("c9", "c1", 2)]
    assert summary["confusions"][0]["share"] == pytest.approx(0.6)
    assert summary["confusions_note"] is None  # both mistakes are listed
    assert [w["name"] for w in summary["worst"][:2]] == ["c3", "c9"] and len(summary["worst"]) == MAX_CLASSES
    assert summary["worst"][0]["accuracy"] == pytest.approx(0.4)
    assert "c20" not in [w["name"] for w in summary["worst"]]
    assert summary["worst_note"] == (f"showing the {MAX_CLASSES} classes with the lowest accuracy of {k - 1} classes "
                                     f"with test images")
    many_mistakes = np.ones((k, k), dtype=np.int64)
    assert _confusion_summary(many_mistakes, names)["confusions_note"] == (
        f"showing the {MAX_CLASSES} largest of {k * (k - 1):,} pairs of a true and a predicted class with mistakes")


def test_class_bars_keep_every_class_up_to_the_limit_and_the_largest_above() -> None:
    few = np.linspace(-1, 1, MAX_CLASSES)
    labels = [f"c{i}" for i in range(MAX_CLASSES)]
    assert class_bars_svg(few, labels, "t", keep=(4,)) == bar_chart_svg(few, labels, width=260, highlight=4,
                                                                        title="t")
    values = np.zeros(1_000)
    values[[5, 500, 900]] = [0.5, -0.9, 0.2]
    svg = class_bars_svg(values, [f"c{i}" for i in range(1_000)], "p", keep=(3, 900))
    assert svg.count("<title>") == MAX_BARS and "p (10 largest |values| of 1,000)" in svg
    for kept in ("c3", "c5", "c500", "c900"):
        assert f">\u2068{kept}\u2069<" in svg  # each label isolated (nnsee.render.bidi)
