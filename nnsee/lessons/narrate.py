"""One short paragraph per lecture step, written from the numbers of one trained run or study.

Each function takes a loaded :class:`~nnsee.train.Run` (with its :class:`~nnsee.data.imageset.Splits`) or a study's
result, computes the few numbers its step is about, and returns a :class:`Narration`: the text and the numbers it
used (JSON-safe), so the demo's guided tour and the lesson notebooks tell the same story from the same figures.
The function names are :data:`~nnsee.lessons.outline.OUTLINE`'s step keys (``hidden-units`` → :func:`hidden_units`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nnsee.data.imageset import Splits
from nnsee.train.run import Run


@dataclass(frozen=True)
class Narration:
    """``text``: one paragraph; ``numbers``: every number (and index) the paragraph states, by name."""

    text: str
    numbers: dict[str, Any] = field(default_factory=dict)


def _pct(v: float | None) -> str:
    return "n/a" if v is None else f"{100 * v:.1f}%"


def _accuracy(run: Run) -> float | None:
    value = (run.metrics.get("test") or {}).get("accuracy")
    return None if value is None else float(value)


def _sample(n: int, most: int) -> np.ndarray:
    """At most ``most`` indices of ``n``, evenly spaced (the first always among them)."""
    return np.unique(np.linspace(0, n - 1, num=min(n, most)).astype(int)) if n else np.zeros(0, dtype=int)


def templates(run: Run, splits: Splits, most: int = 2000) -> Narration:
    """Softmax regression's templates ``W_k`` against the mean standardized training image of class k: Pearson's r
    of the two over the pixels (on at most ``most`` training images); the best and the least alike."""
    from nnsee.methods.templates import class_templates

    w = class_templates(run.model, run.input_shape).astype(np.float64)  # (K, C, H, W)
    pick = _sample(len(splits.train), most)
    x = run.standardize(splits.train.images[pick]).astype(np.float64)
    y = np.asarray(splits.train.labels)[pick]
    k = len(w)
    r = np.full(k, np.nan)
    for c in range(k):
        if (y == c).any():
            mean = x[y == c].mean(axis=0).ravel()
            a, b = w[c].ravel() - w[c].mean(), mean - mean.mean()
            r[c] = float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) or 1.0))
    best, worst = int(np.nanargmax(r)), int(np.nanargmin(r))
    names = run.class_names
    text = (f"Softmax regression reached {_pct(_accuracy(run))} test accuracy with one weight image per class. "
            f"The template of {names[best]} looks most like its class (correlation r = {r[best]:.2f} with the mean "
            f"{names[best]} image), the template of {names[worst]} least (r = {r[worst]:.2f}): it is shaped as much by "
            "the other classes it must reject as by its own images.")
    return Narration(text, {"accuracy": _accuracy(run), "correlations": [float(v) for v in r], "best": best,
                            "worst": worst, "n_images": int(len(pick))})


def first_unit(run: Run, layer: str = "fc1") -> int:
    """The unit the report shows first: the largest outgoing-weight norm ‖W_out[:, j]‖ (ties: the lower index)."""
    from nnsee.methods.hidden_units import outgoing_weights

    w_out = outgoing_weights(run.model, layer)
    return int(np.argmax(np.linalg.norm(w_out.astype(np.float64), axis=0)))


def hidden_units(run: Run, splits: Splits, unit: int | None = None, layer: str = "fc1") -> Narration:
    """Hidden unit ``unit`` (default :func:`first_unit`): the class its outgoing weights promote most (argmax of
    ``W_out[:, j]``) and suppress most (argmin), and the mean change of p(promoted) over the validation images when
    ``h_j = 0`` (:func:`nnsee.methods.unit_ablation.unit_ablation`)."""
    from nnsee.methods.hidden_units import outgoing_weights
    from nnsee.methods.unit_ablation import unit_ablation

    w_out = outgoing_weights(run.model, layer)
    j = first_unit(run, layer) if unit is None else int(unit)
    promotes, suppresses = int(np.argmax(w_out[:, j])), int(np.argmin(w_out[:, j]))
    images = splits.val if len(splits.val) else splits.test
    ablation = unit_ablation(run.model, images.images, layer=layer, transform=run.standardize)
    dp = np.asarray(ablation.probability[j], dtype=np.float64)
    most = int(np.argmax(np.abs(dp)))
    names = run.class_names
    text = (f"Unit {j} (the first card: the largest outgoing weights of {w_out.shape[1]} units) promotes "
            f"{names[promotes]} (weight {w_out[promotes, j]:+.2f}) and suppresses {names[suppresses]} "
            f"({w_out[suppresses, j]:+.2f}). Switching it off changes p({names[promotes]}) by {dp[promotes]:+.2g} "
            f"on average over the {ablation.n_images} validation images; its largest effect is on "
            f"p({names[most]}), {dp[most]:+.2g}.")
    return Narration(text, {"unit": j, "promotes": promotes, "suppresses": suppresses,
                            "promote_weight": float(w_out[promotes, j]),
                            "suppress_weight": float(w_out[suppresses, j]), "dp_promoted": float(dp[promotes]),
                            "most_changed": most, "dp_most": float(dp[most]), "dp": [float(v) for v in dp],
                            "n_images": int(ablation.n_images)})


def dot_product(run: Run, splits: Splits) -> Narration:
    """The test image read wrongly with the highest probability (none wrong: the least confident right one), and its
    predicted class's score split into ``Σ x_i W_k,i`` over pixels that push up, over those that push down, and
    ``b_k``."""
    from nnsee.methods.contributions import explain_linear
    from nnsee.train.evaluate import predict_logits

    logits = predict_logits(run.model, splits.test.images, transform=run.standardize).astype(np.float64)
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    pred, labels = p.argmax(axis=1), np.asarray(splits.test.labels)
    wrong = np.flatnonzero(pred != labels)
    i = int(wrong[np.argmax(p[wrong, pred[wrong]])]) if wrong.size else int(np.argmin(p.max(axis=1)))
    k, true = int(pred[i]), int(labels[i])
    e = explain_linear(run.model, run.standardize(splits.test.images[[i]])[0], run.input_shape)
    c = e.contributions[k].astype(np.float64)
    up, down, bias = float(c[c > 0].sum()), float(c[c < 0].sum()), float(e.bias[k])
    names = run.class_names
    what = (f"the most confident mistake: a {names[true]} read as {names[k]}" if wrong.size
            else f"the least confident test image (a {names[true]}, read correctly)")
    text = (f"Test image {i} is {what} with p = {p[i, k]:.2f}. Its {names[k]} score {up + down + bias:.2f} is the "
            f"sum of {up:+.2f} from the pixels that push it up, {down:+.2f} from those that push it down, and the "
            f"bias {bias:+.2f}; {len(wrong)} of {len(labels)} test images are misread.")
    return Narration(text, {"index": i, "label": true, "predicted": k, "probability": float(p[i, k]),
                            "positive": up, "negative": down, "bias": bias, "score": float(logits[i, k]),
                            "mistakes": int(len(wrong)), "n_test": int(len(labels))})


def standardization(study: Any) -> Narration:
    """A standardization study (:class:`~nnsee.studies.standardization.StandardizationStudy`): each mode's test
    accuracy, the best against ``none``."""
    acc = {r.mode: float(r.test_accuracy) for r in study.results}
    best = max(acc, key=lambda m: acc[m])
    others = ", ".join(f"{m} {_pct(a)}" for m, a in acc.items() if m != best)
    text = (f"The same softmax regression, trained the same way, reached {_pct(acc[best])} test accuracy with "
            f"'{best}' standardization ({others}).")
    if "none" in acc and best != "none":
        text += f" Standardizing gained {100 * (acc[best] - acc['none']):.1f} points over raw pixels."
    return Narration(text, {"accuracy": acc, "best": best})


def overfitting(study: Any) -> Narration:
    """An overfitting study (:class:`~nnsee.studies.overfit.OverfitStudy`): its smallest training set without L2
    (the epoch of its lowest validation loss, its last validation loss, its train − validation gap) against the
    same set with the largest λ (high-frequency share of the weight images)."""
    small = min(r.per_class for r in study.runs)
    runs = sorted((r for r in study.runs if r.per_class == small), key=lambda r: r.l2)
    plain, strong = runs[0], runs[-1]
    hf = "high_frequency_share_mean"
    s = plain.summary()
    text = (f"Trained on {plain.n_train} images ({small} per class) without L2, the training accuracy reached "
            f"{_pct(plain.train_accuracy)} but the validation accuracy only {_pct(plain.val_accuracy)}; the "
            f"validation loss was lowest at epoch {s['min_val_loss_epoch']} ({s['min_val_loss']:.3f}) and ended at "
            f"{s['val_loss']:.3f}. L2 with λ = {strong.l2:g} lowered the high-frequency share of the weight images "
            f"from {plain.noisiness[hf]:.2f} to {strong.noisiness[hf]:.2f}, with validation accuracy "
            f"{_pct(strong.val_accuracy)}.")
    return Narration(text, {"per_class": small, "n_train": plain.n_train, "l2": strong.l2,
                            "train_accuracy": plain.train_accuracy, "val_accuracy": plain.val_accuracy,
                            "min_val_loss_epoch": s["min_val_loss_epoch"], "min_val_loss": s["min_val_loss"],
                            "val_loss": s["val_loss"], "hf_plain": float(plain.noisiness[hf]),
                            "hf_l2": float(strong.noisiness[hf]), "val_accuracy_l2": strong.val_accuracy})


def first_correct(run: Run, splits: Splits) -> int:
    """The first test image the model reads correctly (0 when none is)."""
    from nnsee.train.evaluate import predict_logits

    n = min(len(splits.test), 64)
    pred = predict_logits(run.model, splits.test.images[np.arange(n)], transform=run.standardize).argmax(axis=1)
    right = np.flatnonzero(pred == np.asarray(splits.test.labels)[:n])
    return int(right[0]) if right.size else 0


def occlusion_map(run: Run, splits: Splits, index: int, window: int = 4) -> np.ndarray:
    """Occlusion (:func:`~nnsee.methods.attribution.occlusion`, a ``window`` square of 0s, stride 1) of test image
    ``index`` for its true class's logit: (H, W), summed over channels."""
    from nnsee.methods.attribution.occlusion import occlusion

    x = run.standardize(splits.test.images[[index]])
    label = int(np.asarray(splits.test.labels)[index])
    return occlusion(run.model, x, [label], window=window)[0].sum(axis=0)


def cnn(run: Run, splits: Splits, index: int | None = None, window: int = 4) -> Narration:
    """The CNN's accuracy, its first layer's filters, and where occluding test image ``index`` (default: the first
    read correctly) lowers its true class's score most: the argmax of :func:`occlusion_map`."""
    from nnsee.methods.attribution.filters import first_layer_filters

    i = first_correct(run, splits) if index is None else int(index)
    heat = occlusion_map(run, splits, i, window)
    row, col = (int(v) for v in np.unravel_index(int(np.argmax(heat)), heat.shape))
    filters = first_layer_filters(run.model)
    label = int(np.asarray(splits.test.labels)[i])
    names = run.class_names
    text = (f"The CNN reached {_pct(_accuracy(run))} test accuracy. Its first layer holds {len(filters)} filters of "
            f"{filters.shape[-2]}×{filters.shape[-1]} pixels, applied at every position. Covering test image {i} "
            f"(a {names[label]}) with a {window}×{window} square of zeros (the mean after standardization) hurts its "
            f"{names[label]} score most around "
            f"row {row}, column {col} (a drop of {heat[row, col]:.2f} averaged over the squares covering that pixel).")
    return Narration(text, {"accuracy": _accuracy(run), "filters": int(len(filters)), "index": i, "label": label,
                            "row": row, "col": col, "drop": float(heat[row, col]), "window": window})


def attribution(scores: Mapping[str, Mapping[str, float]], index: int, label: str) -> Narration:
    """A randomization check's result (``{method: {"spearman": ρ, ...}}``, :func:`nnsee.methods.sanity.
    randomization_check` of test image ``index``, class ``label``): the method whose map changed least (highest
    rank correlation between the trained and the randomized network's maps) and most."""
    rho = {m: float(s["spearman"]) for m, s in scores.items() if np.isfinite(s["spearman"])}
    least, most = max(rho, key=lambda m: rho[m]), min(rho, key=lambda m: rho[m])
    text = (f"On test image {index} (a {label}), with every weight re-drawn at random, {least}'s map changed least "
            f"(rank correlation {rho[least]:.2f} with the trained network's map) and {most}'s most "
            f"({rho[most]:.2f}). A map that survives random weights shows the image more than the model: trust "
            "it less.")
    return Narration(text, {"index": index, "spearman": rho, "least_changed": least, "most_changed": most})


#: The step keys of :data:`~nnsee.lessons.outline.OUTLINE` whose narration reads a run and its splits.
RUN_NARRATORS: dict[str, Callable[..., Narration]] = {"templates": templates, "hidden-units": hidden_units,
                                                      "dot-product": dot_product, "cnn": cnn}
