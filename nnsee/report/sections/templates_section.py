"""Class templates ("visualizing the W's"): each class's weights as an image, or the linearisation for MLPs."""

from __future__ import annotations

from typing import Any

import numpy as np

from nnsee.methods import MethodError, class_templates, effective_templates
from nnsee.render import colorbar, data_uri, grid, symmetric_scale, weight_tile
from nnsee.report.sections.common import ReportInput, upscale_for


def templates_section(inp: ReportInput) -> dict[str, Any] | None:
    model, shape = inp.run.model, inp.shape
    try:
        weights, exact = class_templates(model, shape), True
    except MethodError:
        try:
            weights, exact = effective_templates(model, shape), False
        except MethodError as exc:
            inp.notes.append(f"class templates: {exc}")
            return None
    upscale = upscale_for(shape, 112)
    shared = symmetric_scale(weights)
    tiles = []
    for k, name in enumerate(inp.class_names):
        own = symmetric_scale(weights[k])
        tiles.append({
            "name": name,
            "shared_uri": data_uri(weight_tile(weights[k], shared, upscale)),
            "own_uri": data_uri(weight_tile(weights[k], own, upscale)),
            "own_scale": own,
        })
    figure = grid([weight_tile(w, shared, upscale) for w in weights], ncols=min(len(weights), 10),
                  captions=inp.class_names, note=f"shared scale ±{shared:.3g}")
    return {
        "exact": exact,
        "tiles": tiles,
        "scale": shared,
        "colorbar": data_uri(colorbar(shared)),
        "png": figure,
        "rgb": shape[0] == 3,
        "mean_abs": float(np.abs(weights).mean()),
    }
