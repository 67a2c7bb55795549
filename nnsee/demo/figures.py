"""The demo's own figures, as PNG data: URIs: weight grids, one run's thumbnail, the attribution maps of one image
on the trained and the randomized network (with the randomization check's scores from the same maps)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from nnsee.render import data_uri, grid, image_tile, weight_tiles

#: The attribution methods the tour compares (each cheap on a small CNN; the report shows all of them).
TOUR_METHODS = ("saliency", "gradient-x-input", "integrated-gradients", "guided-backprop", "grad-cam")


def weights_uri(weights: np.ndarray, captions: Sequence[object] | None = None, ncols: int = 10, upscale: int = 3,
                title: str | None = None) -> str:
    """Weight images (N, C, H, W) on one shared symmetric scale (RdBu_r, 0 white), ``ncols`` per row, as one PNG."""
    tiles, scales = weight_tiles(np.asarray(weights, dtype=np.float32), shared=True, upscale=upscale)
    note = f"scale ±{scales[0]:.3g}" if scales else None
    return data_uri(grid(tiles, ncols, captions=list(captions) if captions is not None else None, title=title,
                         note=note))


def images_uri(images: np.ndarray, captions: Sequence[object] | None = None, ncols: int = 10, upscale: int = 3) -> str:
    """Images (N, C, H, W) in [0, 1] side by side, as one PNG."""
    tiles = [image_tile(np.clip(x, 0, 1), upscale) for x in images]
    return data_uri(grid(tiles, ncols, captions=list(captions) if captions is not None else None))


def thumbnail(title: str, data: dict[str, Any]) -> str | None:
    """A small picture of one demo report, drawn from the run's own weights: a softmax run's templates, an MLP's
    first unit (:func:`~nnsee.lessons.narrate.first_unit`), a CNN's first-layer filters, the overfitting study's
    first weight images without and with the strongest L2, the standardization study's templates per mode."""
    if "run" in data:
        run = data["run"]
        if title.endswith("-cnn"):
            from nnsee.methods.attribution.filters import first_layer_filters

            return weights_uri(first_layer_filters(run.model)[:16], ncols=8, upscale=7)
        if title.endswith("-mlp"):
            from nnsee.lessons.narrate import first_unit
            from nnsee.methods.hidden_units import incoming_weights

            w = incoming_weights(run.model, run.input_shape)
            return weights_uri(w[[first_unit(run)]], ncols=1, upscale=4)
        from nnsee.methods.templates import class_templates

        return weights_uri(class_templates(run.model, run.input_shape), ncols=5, upscale=2)
    study = data.get("study")
    if hasattr(study, "runs"):  # overfitting
        small = min(r.per_class for r in study.runs)
        runs = sorted((r for r in study.runs if r.per_class == small), key=lambda r: r.l2)
        return weights_uri(np.concatenate([runs[0].incoming_weights[:4], runs[-1].incoming_weights[:4]]), ncols=4,
                           upscale=2)
    if hasattr(study, "results"):  # standardization
        return weights_uri(np.concatenate([r.templates[:5] for r in study.results]), ncols=5, upscale=2)
    return None


def attribution_maps(model: Any, x: np.ndarray, target: int, methods: Sequence[str] = TOUR_METHODS
                     ) -> tuple[dict[str, dict[str, float]], dict[str, np.ndarray], dict[str, np.ndarray]]:
    """:func:`~nnsee.methods.sanity.randomization_check` of one standardized image ``x`` (1, C, H, W) for class
    ``target`` over ``methods`` that apply, and the maps it compared: (scores, trained maps, randomized maps), each
    map summed over channels to (H, W) (Grad-CAM's at its layer)."""
    from nnsee.methods.attribution.registry import applicable
    from nnsee.methods.sanity import map_functions, randomization_check

    fit = [m for m in methods if m in applicable(model)]
    functions = map_functions(model, fit)
    seen: dict[str, list[np.ndarray]] = {m: [] for m in fit}

    def recorder(name: str) -> Any:
        def run(net: Any, images: Any, t: Any) -> np.ndarray:
            maps = np.asarray(functions[name](net, images, t))
            seen[name].append(maps)
            return maps
        return run

    scores = randomization_check(model, x, [target], methods={m: recorder(m) for m in fit})

    def flat(m: np.ndarray) -> np.ndarray:
        return m[0].sum(axis=0) if m.ndim == 4 else m[0]

    return scores, {m: flat(v[0]) for m, v in seen.items()}, {m: flat(v[1]) for m, v in seen.items()}
