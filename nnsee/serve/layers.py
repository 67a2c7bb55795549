"""The live page's layer-by-layer view: the drawn or uploaded image through every layer of a run.

``POST /api/layers?run=NAME`` (an image body, as ``/api/explain``): the image decoded and standardized as the run's
data, then every leaf module's output in forward order (:func:`~nnsee.methods.layer_by_layer.layer_by_layer`), each
as its name, type, shape and one PNG data: URI (feature maps as tiles, vectors as strips; drawn by the report's
:func:`~nnsee.report.sections.layers_section.layer_panels`), then the logits and probabilities (numbers, and bar charts
as SVG data: URIs). A blank image answers ``{"blank": true}``.
"""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
from fastapi import FastAPI, Request

from nnsee.methods.layer_by_layer import layer_by_layer
from nnsee.render import data_uri, image_tile
from nnsee.report.sections.layers_section import layer_panels
from nnsee.serve.pool import WorkPool
from nnsee.serve.views import LoadedRun


def svg_uri(svg: str) -> str:
    """An SVG document as a data: URI (shown by <img>, where no script in it could run)."""
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")


def layers_view(loaded: LoadedRun, image: np.ndarray) -> dict[str, Any]:
    """The JSON answer for one decoded image (C, H, W) in [0, 1]."""
    run = loaded.run
    x = run.standardize(image[None])[0]
    with loaded.lock:
        view = layer_by_layer(run.model, x, input_shape=loaded.shape)
    panels = layer_panels(view, list(run.class_names))
    return {
        "run": loaded.name, "class_names": run.class_names, "input_shape": list(loaded.shape),
        "input": data_uri(image_tile(image, max(1, round(84 / loaded.shape[-1])))),
        "layers": panels["layers"], "n_layers": panels["n_layers"],
        "logits": [float(v) for v in view.logits], "probabilities": [float(v) for v in view.probabilities],
        "predicted": panels["predicted"], "probability": panels["probability"],
        "logits_svg": svg_uri(panels["logits_svg"]), "probabilities_svg": svg_uri(panels["probabilities_svg"]),
    }


def add_routes(app: FastAPI, get: Any, jobs: WorkPool) -> None:
    """Register ``POST /api/layers``."""
    from nnsee.serve.app import MAX_BODY, in_pool, posted_image, read_limited

    @app.post("/api/layers")
    async def layers(request: Request, run: str) -> dict[str, Any]:
        loaded = get(run)
        body = await read_limited(request, MAX_BODY)

        def work() -> dict[str, Any]:
            image = posted_image(body, loaded)
            if image is None:
                return {"run": loaded.name, "blank": True}
            return layers_view(loaded, image)

        return await in_pool(jobs, work)
