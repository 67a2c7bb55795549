"""The ROAR study's page: test accuracy after removing each method's top pixels and retraining, and examples."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

import nnsee
from nnsee.render import write_atomic
from nnsee.report.build import environment, report_folder
from nnsee.report.sections.common import images_grid_uri, upscale_for
from nnsee.report.sections.faithfulness_section import COLOURS, curves_svg

if TYPE_CHECKING:
    from nnsee.studies.roar import RoarStudy


def build_roar_report(study: RoarStudy, out: str | Path) -> Path:
    """Write ``out/index.html`` and ``out/study.json`` for a :class:`~nnsee.studies.roar.RoarStudy` (only renders)."""
    from nnsee.studies.roar import RANDOM

    out = Path(out)
    report_folder(out, ["index.html", "study.json"])
    summary = study.summary()
    fractions = np.array(summary["fractions"])
    methods = [m for m in study.methods if m != RANDOM]
    colours = {m: COLOURS[i % len(COLOURS)] for i, m in enumerate(methods)}
    chart = curves_svg({m: np.array(summary["accuracy"][m]) for m in study.methods}, fractions, colours,
                       "test accuracy after removing the top pixels and retraining (lower: the pixels mattered)",
                       width=520, floor=RANDOM, x_label="share of pixels removed from every image")
    shape = study.original.shape[1:]
    upscale = upscale_for(shape, 56)
    rows = []
    for m in study.methods:
        accuracy = summary["accuracy"][m]
        shown = study.examples[m]  # (n, F, C, H, W)
        strip = np.concatenate([study.original[:, None], shown], axis=1).reshape(-1, *shape)
        rows.append({"name": m, "accuracy": accuracy[1:], "drop": accuracy[0] - accuracy[-1], "random": m == RANDOM,
                     "examples": images_grid_uri(np.clip(strip, 0, 1), shown.shape[1] + 1, upscale)})
    model_text = ", ".join(f"{k} {v}" for k, v in summary["model"].items() if k != "name")
    html = environment().get_template("roar.html.j2").render(
        s=summary, rows=rows, chart=chart, model_text=model_text, fractions=study.fractions, version=nnsee.__version__)
    write_atomic(out / "study.json", json.dumps(summary, indent=1).encode("utf-8"))
    write_atomic(out / "index.html", html.encode("utf-8"))
    return out / "index.html"
