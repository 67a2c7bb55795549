"""Inline SVG: valid XML, hostile names escaped, bar colours and zero line."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
import pytest

from nnsee.render import bar_chart_svg, sparkline_svg, xml_text

NS = "{http://www.w3.org/2000/svg}"
HOSTILE = ['<script>alert("x")</script>', '"quote"', "a & b", "it's", "$x_1$", "ctrl\x00\x1bchar", "two\nlines"]


def test_bar_chart_escapes_hostile_names() -> None:
    values = np.array([1.0, -2.0, 0.0, np.nan, 0.5, np.inf, -0.1])
    svg = bar_chart_svg(values, HOSTILE, width=400, highlight=1, title="<b>unit 3</b>")
    assert "<script>" not in svg and "<b>" not in svg
    root = ET.fromstring(svg)  # parses: well-formed XML
    texts = [t.text or "" for t in root.iter(f"{NS}text")]
    titles = [t.text or "" for t in root.iter(f"{NS}title")]
    assert texts[0] == "<b>unit 3</b>"
    assert any(t.startswith('\u2068<script>alert("x")</script>') for t in titles)  # names isolated (bidi)
    assert '\u2068"quote"\u2069: -2' in titles
    assert any("it's" in t for t in titles)
    assert "nan" in texts and "+inf" in texts


def test_bar_colours_and_zero_line() -> None:
    root = ET.fromstring(bar_chart_svg([2.0, -1.0, 0.0], ["a", "b", "c"]))
    rects = list(root.iter(f"{NS}rect"))
    assert [r.get("fill") for r in rects] == ["#b2182b", "#2166ac"]  # no bar for 0
    assert float(rects[0].get("width")) == pytest.approx(2 * float(rects[1].get("width")))
    assert len(list(root.iter(f"{NS}line"))) == 1


def test_bar_chart_degenerate_inputs() -> None:
    ET.fromstring(bar_chart_svg([0.0, 0.0], ["a", "b"]))
    ET.fromstring(bar_chart_svg([], []))
    ET.fromstring(bar_chart_svg([np.nan], ["x"], height=20))
    with pytest.raises(ValueError):
        bar_chart_svg([1.0], ["a", "b"])


def test_sparkline_is_valid_and_breaks_at_nan() -> None:
    svg = sparkline_svg({"train <loss>": [1.0, 0.5, np.nan, 0.3, 0.2], "val": [1.0]})
    root = ET.fromstring(svg)
    assert len(list(root.iter(f"{NS}polyline"))) == 2
    assert len(list(root.iter(f"{NS}circle"))) == 1
    assert "train <loss>: 0.2" in [t.text for t in root.iter(f"{NS}title")]
    ET.fromstring(sparkline_svg({}))


def test_xml_text() -> None:
    assert xml_text('<a href="x">&') == "&lt;a href=&quot;x&quot;&gt;&amp;"
    assert xml_text("\x00") == "?"
