"""Explain image files with a trained run: the numbers (a JSON-safe dict per image) and one PNG per image.

``contributions`` is the dot-product view (``score_k = W_k · x + b_k`` pixel by pixel; through the hidden layer
for an MLP); every other method is an attribution map of one target class (default: the predicted one).
A blank image (no contrast, :func:`~nnsee.methods.one_image.is_blank`) is reported as such and gets no map. Each PNG
is a new file: ``<stem>-<method>.png``, or ``<stem>-<method>-2.png`` and so on where that name is taken (by a file
already in ``out``, or by an image of the same name earlier in the call): nothing in ``out`` is ever overwritten.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nnsee.errors import NnseeError, not_one_of

if TYPE_CHECKING:
    from nnsee.methods.one_image import ImageExplanation
    from nnsee.train.run import Run

LINEAR_METHOD = "contributions"
#: How many PNGs of one image and method a folder may hold (``-2`` .. ``-N``) before explain asks for another --out.
MAX_SAME_NAME = 1000


def load_images(run: Run, paths: Sequence[Path]) -> np.ndarray:
    """The image files as the run's inputs (N, C, H, W) in [0, 1]: same size and channels as its training data,
    brought to that size by the run's resize rule (:func:`~nnsee.models.adopted.resize_rule`)."""
    from nnsee.data.folder import decode_image
    from nnsee.models.adopted import resize_rule

    channels, height, width = run.input_shape
    if height != width:
        raise NnseeError(f"{run.path} expects {height}x{width} images; explain reads square images only")
    for path in paths:
        _say_channel_conversion(path, channels)
    resize = resize_rule(run.meta)
    return np.stack([decode_image(p, size=height, grayscale=channels == 1, resize=resize) for p in paths])


#: Pillow modes of one grey band (with or without alpha).
GREY_MODES = ("1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F")


def _say_channel_conversion(path: Path, channels: int) -> None:
    """Warn (one line) when ``path``'s channels differ from the model's: a grey image given to an RGB model is
    copied into R, G and B; a colour image given to a grey model becomes its luminance (L = 0.299 R + 0.587 G +
    0.114 B). Only the header is read; an unreadable file is left to the decoder's own error."""
    import warnings

    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            grey = im.mode in GREY_MODES
    except (OSError, UnidentifiedImageError, ValueError):
        return
    if grey and channels == 3:
        warnings.warn(f"{path.name}: a grey image for a model of 3 channels: its grey is copied into R, G and B",
                      stacklevel=3)
    elif not grey and channels == 1:
        warnings.warn(f"{path.name}: a colour image for a model of 1 channel: converted to grey "
                      "(L = 0.299 R + 0.587 G + 0.114 B)", stacklevel=3)


def resolve_target(target: str | None, class_names: list[str]) -> int | None:
    """A class given by name or by index in ASCII digits (``parse_index``), or None (the predicted class)."""
    from nnsee.methods.attribution.target import parse_index

    if target is None:
        return None
    if target in class_names:
        return class_names.index(target)
    index = parse_index(target)
    if index is not None and index < len(class_names):
        return index
    raise NnseeError(f"unknown target class {target!r}: give a class name or an index 0..{len(class_names) - 1} "
                     "in digits 0-9")


def explain_files(run: Run, paths: Sequence[Path], out: Path, method: str = LINEAR_METHOD,
                  target: str | None = None, output: str = "logit",
                  options: dict[str, Any] | None = None, curves: bool = False) -> list[dict[str, Any]]:
    """One dict per image (prediction, per-class scores or the map: its values and statistics) and
    ``out/<stem>-<method>.png``; ``options`` go to the method (checked against its declared options; text values,
    as the command line gives them, are read by :func:`read_options` first). ``curves`` adds ``faithfulness``:
    the deletion and insertion curves of the map shown (:func:`faithfulness`)."""
    from nnsee.methods.one_image import check_view, explain_image, is_blank, view_names
    from nnsee.render import save_png, why_image

    if method not in view_names():
        raise NnseeError(not_one_of("method", method, view_names()))
    names = list(run.class_names)
    chosen = resolve_target(target, names)
    options = read_options(method, options or {})
    check_view(method, chosen, output, options)
    images = load_images(run, paths)
    blank = [is_blank(image) for image in images]
    if all(blank):
        raise NnseeError(f"{'the image is' if len(paths) == 1 else 'every image is'} blank (no contrast: every pixel "
                         f"{float(images[0].flat[0]):.3g} at the model's {run.input_shape[-1]}x{run.input_shape[-1]} "
                         "size), so there is nothing to explain; no map written")
    x_std = run.standardize(images)
    upscale = max(1, round(84 / run.input_shape[-1]))
    results = []
    for i, path in enumerate(paths):
        if blank[i]:
            results.append({"image": str(path), "method": method, "blank": True,
                            "pixel_value": float(images[i].mean())})
            continue
        e = explain_image(run.model, x_std[i], method, chosen, output, run.input_shape, **(options or {}))
        predicted, probabilities = e.predicted, e.probabilities
        entry: dict[str, Any] = {"image": str(path), "method": method, "predicted": names[predicted],
                                 "probability": float(probabilities[predicted])}
        maps = np.stack([p.map for p in e.panels])
        if e.dot is not None:
            captions, extra = _contributions(e, names)
            entry.update(extra)
            if curves and e.panels[0].kind == "class":  # softmax regression: x ⊙ W_k of the predicted class
                shown = {p.index: p.map for p in e.panels}[predicted]
                entry["faithfulness"] = faithfulness(run.model, x_std[i], shown[None], predicted)
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
            if curves:
                entry["faithfulness"] = faithfulness(run.model, x_std[i], attribution, k)
            title = f"{path.name}: predicted {names[predicted]} ({probabilities[predicted]:.1%}); {method}"
        drawn = why_image(images[i], maps, captions, title, upscale=upscale)
        claimed = claim_new_file(out, f"{path.stem}-{method}", ".png")
        try:
            png = save_png(drawn, claimed)
        except BaseException:
            claimed.unlink(missing_ok=True)
            raise
        entry["png"] = str(png)
        results.append(entry)
    return results


def faithfulness(model: Any, x_std: np.ndarray, maps: np.ndarray, target: int) -> dict[str, Any]:
    """Deletion and insertion curves of one standardized image ``x_std`` (C, H, W) in the order of ``maps``
    (1, C', H, W), the probability of ``target`` at each fraction, their areas, and the same for the random floor
    (the mean of :data:`RANDOM_REPEATS` seeded orders): :mod:`nnsee.methods.deletion_insertion`, baseline 0 (the
    standardized mean)."""
    from nnsee.methods.deletion_insertion import STEPS, deletion_insertion, random_curves

    ranked = deletion_insertion(model, x_std[None], maps, target, steps=STEPS)
    floor = random_curves(model, x_std[None], target, steps=STEPS, repeats=RANDOM_REPEATS)
    return {"baseline": "0 in standardized space (the mean)", "steps": STEPS, **ranked.summary(0),
            "random": {"repeats": RANDOM_REPEATS, "seed": 0, **floor.summary(0)}}


#: Random orders whose mean curve is the floor beside a map's curves.
RANDOM_REPEATS = 10


def read_options(method: str, given: Mapping[str, Any]) -> dict[str, Any]:
    """Option values given as text (``--option NAME=VALUE``) read by the type the method declares for them: a
    whole number in ASCII digits only (:func:`~nnsee.methods.attribution.target.parse_index`: not ``'٣'``, ``'-1'``
    or ``'1e3'``), a finite float (not ``nan`` or ``inf``); strings, values that are not text and names the method
    does not declare pass unchanged (the method refuses unknown names and checks its own ranges)."""
    from nnsee.methods.attribution.registry import METHODS
    from nnsee.methods.attribution.target import parse_index

    declared = {o.name: o for o in METHODS[method].options} if method in METHODS else {}
    read: dict[str, Any] = {}
    for name, value in given.items():
        option = declared.get(name)
        if option is not None and isinstance(value, str) and option.type in (int, float):
            text = value
            if option.type is int:
                value = parse_index(text)
                if value is None:
                    raise NnseeError(f"option {name} of {method} takes a whole number in digits 0-9, got {text!r}")
            else:
                try:
                    value = float(text)
                except ValueError:
                    raise NnseeError(f"option {name} of {method} takes a number, got {text!r}") from None
                if not math.isfinite(value):
                    raise NnseeError(f"option {name} of {method} takes a finite number, got {text!r}")
        read[name] = value
    return read


def claim_new_file(folder: Path, stem: str, suffix: str) -> Path:
    """Create and return an empty new file ``folder/<stem><suffix>``, or ``<stem>-2<suffix>``, ``-3``, ... where the
    name is taken. ``O_CREAT | O_EXCL`` claims the name atomically (a link, even a dangling one, counts as taken), so
    nothing already there is overwritten, whoever wrote it; the caller then writes the file in its place."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for n in range(1, MAX_SAME_NAME + 1):
            path = folder / (f"{stem}{suffix}" if n == 1 else f"{stem}-{n}{suffix}")
            try:
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
                return path
            except FileExistsError:
                continue
    except OSError as e:
        raise NnseeError(f"cannot write into {folder}: {e.strerror or e}; choose another --out") from None
    raise NnseeError(f"{folder} already holds {MAX_SAME_NAME} files named {stem}*{suffix}; choose another --out")


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
