"""The standardization study's page: example images and the class templates learned under each mode."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

import nnsee
from nnsee.render import data_uri, image_tile, symmetric_scale, weight_tile, write_atomic
from nnsee.render.bidi import isolated
from nnsee.report.build import environment, report_folder
from nnsee.report.sections.common import upscale_for

if TYPE_CHECKING:
    from nnsee.studies.standardization import StandardizationStudy


def build_standardization_report(study: StandardizationStudy, out: str | Path) -> Path:
    """Write ``out/index.html`` for a :class:`~nnsee.studies.StandardizationStudy` (only renders it)."""
    out = Path(out)
    report_folder(out, ["index.html"])
    shape = study.originals.shape[1:]
    upscale = upscale_for(shape, 84)
    modes = []
    for r in study.results:
        scale = symmetric_scale(r.templates)
        norms = np.asarray(r.norms, dtype=np.float64)
        modes.append({
            "mode": r.mode, "val": r.val_accuracy, "test": r.test_accuracy, "scale": scale,
            "norm_min": float(norms.min()), "norm_max": float(norms.max()),
            "templates": [data_uri(weight_tile(t, scale, upscale)) for t in r.templates],
            "examples": [data_uri(weight_tile(e[r.mode], symmetric_scale(e[r.mode]), upscale))
                         for e in study.examples],
        })
    originals = [data_uri(image_tile(np.clip(x, 0, 1), upscale)) for x in study.originals]
    html = environment().get_template("standardization.html.j2").render(
        modes=modes, originals=originals, class_names=[isolated(n) for n in study.class_names],
        version=nnsee.__version__)
    write_atomic(out / "index.html", html.encode("utf-8"))
    return out / "index.html"
