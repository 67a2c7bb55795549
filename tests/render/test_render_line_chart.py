"""Learning curves as inline SVG: well-formed, escaped, gaps at non-finite points."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from nnsee.render import learning_curves_svg, line_chart_svg


def test_line_chart_is_valid_xml_with_escaped_labels_and_gaps() -> None:
    svg = line_chart_svg({"<b>a</b>": ([1, 2, 3, 4], [1.0, float("nan"), 0.5, 0.25])}, title="t & <u>")
    root = ET.fromstring(svg)
    lines = [e for e in root.iter() if e.tag.endswith("polyline")]
    dots = [e for e in root.iter() if e.tag.endswith("circle")]
    assert len(lines) == 1 and len(dots) == 1  # the NaN at epoch 2 breaks the line: epoch 1 alone (a dot), 3-4
    texts = "".join(e.text or "" for e in root.iter() if e.tag.endswith("text"))
    assert "<b>a</b>" in texts and "t & <u>" in texts


def test_learning_curves_svg_draws_train_and_validation() -> None:
    history = {"epoch": [1, 2, 3], "train_loss": [1, 0.5, 0.2], "val_loss": [1, 0.7, 0.9],
               "train_accuracy": [0.5, 0.8, 0.9], "val_accuracy": [0.5, 0.6, 0.6]}
    loss, accuracy = learning_curves_svg(history)
    for svg in (loss, accuracy):
        assert sum(1 for e in ET.fromstring(svg).iter() if e.tag.endswith("polyline")) == 2
