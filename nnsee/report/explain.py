"""Explain image files with a trained run: the numbers (a JSON-safe dict per image) and one PNG per image.

``contributions`` is the dot-product view (``score_k = W_k · x + b_k`` pixel by pixel; through the hidden layer
for an MLP); every other method is an attribution map of one target class (default: the predicted one).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from nnsee.errors import NnseeError
from nnsee.methods.base import softmax

LINEAR_METHOD = "contributions"


def method_names() -> tuple[str, ...]:
    from nnsee.methods.attribution.catalog import METHODS

    return (LINEAR_METHOD, *METHODS)


def load_images(run: Any, paths: Sequence[Path]) -> np.ndarray:
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


def explain_files(run: Any, paths: Sequence[Path], out: Path, method: str = LINEAR_METHOD,
                  target: str | None = None, output: str = "logit") -> list[dict[str, Any]]:
    """One dict per image (prediction, per-class scores or the map: its values and statistics) and
    ``out/<stem>-<method>.png``."""
    from nnsee.render import save_png, why_image
    from nnsee.train.evaluate import predict_logits

    if method not in method_names():
        raise NnseeError(f"unknown method {method!r}; choose one of {', '.join(method_names())}")
    names = list(run.class_names)
    images = load_images(run, paths)
    x_std = run.standardizer.transform(images)
    logits = predict_logits(run.model, x_std)
    probabilities = softmax(logits)
    chosen = resolve_target(target, names)
    upscale = max(1, round(84 / run.input_shape[-1]))
    results = []
    for i, path in enumerate(paths):
        predicted = int(np.argmax(logits[i]))
        entry: dict[str, Any] = {"image": str(path), "method": method, "predicted": names[predicted],
                                 "probability": float(probabilities[i, predicted])}
        if method == LINEAR_METHOD:
            maps, captions, extra = _contributions(run, x_std[i], names)
            entry.update(extra)
            title = f"{path.name}: predicted {names[predicted]} ({probabilities[i, predicted]:.1%})"
        else:
            from nnsee.methods.attribution.catalog import attribute

            k = predicted if chosen is None else chosen
            attribution, extra = attribute(method, run.model, x_std[i : i + 1], np.array([k]), output)
            shown = attribution[0].sum(axis=0, keepdims=True)  # channels summed for display
            maps, captions = shown[None], [f"{method} of {names[k]} ({output})"]
            entry.update(target=names[k], output=output, map={
                "shape": list(attribution.shape[1:]), "sum": float(attribution.sum()),
                "min": float(attribution.min()), "max": float(attribution.max()),
                "values": attribution[0].tolist()}, **extra)
            entry["probabilities"] = {n: float(p) for n, p in zip(names, probabilities[i], strict=True)}
            title = f"{path.name}: predicted {names[predicted]} ({probabilities[i, predicted]:.1%}); {method}"
        png = save_png(why_image(images[i], maps, captions, title, upscale=upscale),
                       out / f"{path.stem}-{method}.png")
        entry["png"] = str(png)
        results.append(entry)
    return results


def _contributions(run: Any, x_std: np.ndarray, names: list[str]) -> tuple[np.ndarray, list[str], dict[str, Any]]:
    """The maps drawn, their captions, and the JSON: ``classes`` (with each class's map ``x ⊙ W_k`` for a linear
    model) and, for an MLP, ``units`` (the top units, each with its map ``x ⊙ W_1[j]``)."""
    from nnsee.methods import LinearExplanation, explain

    e = explain(run.model, x_std, run.input_shape)
    linear = isinstance(e, LinearExplanation)
    bias = e.bias if linear else e.out_bias
    if linear:
        maps = e.contributions
        captions = [f"{n} p={p:.2f}" for n, p in zip(names, e.probabilities, strict=True)]
    else:
        maps = e.pixel_contributions
        captions = [f"unit {u} h={e.hidden[u]:.2f}" for u in e.top_units]
    classes = {n: {"probability": float(e.probabilities[k]), "logit": float(e.logits[k]), "bias": float(bias[k]),
                   "contribution_sum": float(e.contribution_sum[k])} for k, n in enumerate(names)}
    if linear:
        for k, n in enumerate(names):
            classes[n]["map"] = maps[k].tolist()
        return maps, captions, {"classes": classes}
    units = [{"unit": int(u), "activation": float(e.hidden[u]), "pre_activation": float(e.pre_activation[u]),
              "votes": {n: float(v) for n, v in zip(names, e.votes[:, u], strict=True)}, "map": maps[j].tolist()}
             for j, u in enumerate(e.top_units)]
    return maps, captions, {"classes": classes, "units": units}
