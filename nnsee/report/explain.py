"""Explain image files with a trained run: the numbers (a JSON-safe dict per image) and one PNG per image.

``contributions`` is the dot-product view (``score_k = W_k · x + b_k`` pixel by pixel; through the hidden layer
for an MLP); every other method is an attribution map of one target class (default: the predicted one).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nnsee.errors import NnseeError, not_one_of

if TYPE_CHECKING:
    from nnsee.methods.one_image import ImageExplanation
    from nnsee.train.run import Run

LINEAR_METHOD = "contributions"


def load_images(run: Run, paths: Sequence[Path]) -> np.ndarray:
    """The image files as the run's inputs (N, C, H, W) in [0, 1]: same size and channels as its training data."""
    from nnsee.data.folder import decode_image

    channels, height, width = run.input_shape
    if height != width:
        raise NnseeError(f"{run.path} expects {height}x{width} images; explain reads square images only")
    return np.stack([decode_image(p, size=height, grayscale=channels == 1) for p in paths])


def resolve_target(target: str | None, class_names: list[str]) -> int | None:
    """A class given by name or index, or None (the predicted class)."""
    if target is None:
        return None
    if target in class_names:
        return class_names.index(target)
    if target.isdigit() and int(target) < len(class_names):
        return int(target)
    raise NnseeError(f"unknown target class {target!r}: give a class name or an index 0..{len(class_names) - 1}")


def explain_files(run: Run, paths: Sequence[Path], out: Path, method: str = LINEAR_METHOD,
                  target: str | None = None, output: str = "logit",
                  options: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """One dict per image (prediction, per-class scores or the map: its values and statistics) and
    ``out/<stem>-<method>.png``; ``options`` go to the method (checked against its declared options)."""
    from nnsee.methods.one_image import explain_image, view_names
    from nnsee.render import save_png, why_image

    if method not in view_names():
        raise NnseeError(not_one_of("method", method, view_names()))
    names = list(run.class_names)
    images = load_images(run, paths)
    x_std = run.standardize(images)
    chosen = resolve_target(target, names)
    upscale = max(1, round(84 / run.input_shape[-1]))
    results = []
    for i, path in enumerate(paths):
        e = explain_image(run.model, x_std[i], method, chosen, output, run.input_shape, **(options or {}))
        predicted, probabilities = e.predicted, e.probabilities
        entry: dict[str, Any] = {"image": str(path), "method": method, "predicted": names[predicted],
                                 "probability": float(probabilities[predicted])}
        maps = np.stack([p.map for p in e.panels])
        if e.dot is not None:
            captions, extra = _contributions(e, names)
            entry.update(extra)
            title = f"{path.name}: predicted {names[predicted]} ({probabilities[predicted]:.1%})"
        else:
            k = e.target
            attribution = e.attribution.input_maps(run.input_shape)  # type: ignore[union-attr]
            captions = [f"{method} of {names[k]} ({output})"]
            entry.update(target=names[k], output=output, map={
                "shape": list(attribution.shape[1:]), "sum": float(attribution.sum()),
                "min": float(attribution.min()), "max": float(attribution.max()),
                "values": attribution[0].tolist()}, **e.extras)
            entry["probabilities"] = {n: float(p) for n, p in zip(names, probabilities, strict=True)}
            title = f"{path.name}: predicted {names[predicted]} ({probabilities[predicted]:.1%}); {method}"
        png = save_png(why_image(images[i], maps, captions, title, upscale=upscale),
                       out / f"{path.stem}-{method}.png")
        entry["png"] = str(png)
        results.append(entry)
    return results


def _contributions(e: ImageExplanation, names: list[str]) -> tuple[list[str], dict[str, Any]]:
    """The captions of the maps drawn, and the JSON: ``classes`` (with each class's map ``x ⊙ W_k`` for a linear
    model) and, for an MLP, ``units`` (the top units, each with its map ``x ⊙ W_1[j]``)."""
    from nnsee.methods import LinearExplanation

    d = e.dot
    linear = isinstance(d, LinearExplanation)
    bias = d.bias if linear else d.out_bias  # type: ignore[union-attr]
    classes = {n: {"probability": float(d.probabilities[k]), "logit": float(d.logits[k]), "bias": float(bias[k]),
                   "contribution_sum": float(d.contribution_sum[k])} for k, n in enumerate(names)}
    if linear:
        for p in e.panels:
            classes[names[p.index]]["map"] = p.map.tolist()
        return [f"{n} p={p:.2f}" for n, p in zip(names, d.probabilities, strict=True)], {"classes": classes}
    units = [{"unit": p.index, "activation": float(d.hidden[p.index]),
              "pre_activation": float(d.pre_activation[p.index]),
              "votes": {n: float(v) for n, v in zip(names, d.votes[:, p.index], strict=True)}, "map": p.map.tolist()}
             for p in e.panels]
    return [f"unit {p.index} h={p.value:.2f}" for p in e.panels], {"classes": classes, "units": units}
