"""The line chart names its x axis as asked and draws a lone point (a run's first epoch) as a dot."""

from __future__ import annotations

import re

from nnsee.render.svg import line_chart_svg


def test_x_axis_is_named_as_asked_and_escaped() -> None:
    svg = line_chart_svg({"p": ([0, 1, 2], [0.1, 0.5, 0.9])}, "t", x_label="shift <px>")
    assert svg.endswith('text-anchor="middle">shift &lt;px&gt;</text></svg>')
    assert "epoch" not in svg
    assert ">epoch</text>" in line_chart_svg({"p": ([0, 1], [0.1, 0.5])}, "t")  # the default


def test_a_lone_point_is_a_dot_and_a_line_is_a_polyline() -> None:
    one = line_chart_svg({"train": ([1], [0.5]), "val": ([1, 2, 3], [0.4, float("nan"), 0.2])}, "loss")
    assert len(re.findall(r"<circle ", one)) == 3  # train's single point, and val's two points cut apart by NaN
    assert "<polyline" not in one
    two = line_chart_svg({"train": ([1, 2], [0.5, 0.4])}, "loss")
    assert "<circle" not in two and two.count("<polyline") == 1
