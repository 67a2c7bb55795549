"""The overfitting study: one network, heavy optimization, with and without L2, on few and on more examples.

Every run trains the same 300-unit MLP from the same initial weights (``torch.manual_seed(seed)`` before building
it) with full-batch L-BFGS on a stratified subset of ``per_class`` training images per class, minimizing
``mean_i(−log p(y_i | x_i)) + (λ/2) Σ‖W‖²`` for each ``λ`` in ``l2_values``, and validates on all of
``data.val`` every epoch. Each run keeps its learning curve, its final train/validation/test accuracy, its
first-layer weights (one image per hidden unit) and how noisy they are (:mod:`nnsee.methods.noisiness`).

What it shows on the built-in digits (40 images per class, no L2): training accuracy reaches 1.0 and the
training loss ~0 while the validation loss turns back up after a few epochs, and the weight images are noisier
(higher high-frequency share and total variation ratio) than with L2, which decays the random part of the
initial weights that the data never constrains.

Defaults (on the digits: six runs, about 40 s on 2 cores): 40 and 200 images per class; λ = 0, 0.03 (lowest
validation loss) and 0.3 (smoothest weights, but it underfits); 25 epochs of 4 L-BFGS iterations, so the curve
has 25 points and the no-L2 runs reach zero training loss within the first ten epochs.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from nnsee.data.imageset import ImageSet, Splits
from nnsee.errors import DataError
from nnsee.io import atomic_write_text
from nnsee.methods.noisiness import noisiness
from nnsee.models.dense_chain import dense_stages
from nnsee.models.registry import build_model
from nnsee.train.config import TrainConfig
from nnsee.train.evaluate import evaluate
from nnsee.train.fit import fit

DEFAULT_PER_CLASS = (40, 200)
DEFAULT_L2 = (0.0, 0.03, 0.3)
DEFAULT_EPOCHS = 25
DEFAULT_LBFGS_ITERATIONS = 4


@dataclass
class OverfitRun:
    """One trained run of the study.

    ``history`` is fit's per-epoch history (``epoch, train_loss, train_accuracy, val_loss, val_accuracy,
    l2_penalty, seconds``); ``gap = train_accuracy − val_accuracy``; ``incoming_weights`` (U, C, H, W) are the
    first layer's weights, hidden unit ``j``'s as an image; ``noisiness`` is :func:`noisiness` of them.
    """

    per_class: int
    l2: float
    n_train: int
    history: dict[str, list[float]]
    noisiness: dict[str, Any]
    train_accuracy: float
    val_accuracy: float
    test_accuracy: float | None
    gap: float
    incoming_weights: np.ndarray
    run_dir: Path | None = None
    seconds: float = 0.0

    @property
    def name(self) -> str:
        """``<per_class>-l2-<λ>``, also the run folder's name."""
        return run_name(self.per_class, self.l2)

    @property
    def min_val_loss_epoch(self) -> int | None:
        """The epoch (1-based) with the lowest validation loss, or None without validation data."""
        losses = np.asarray(self.history["val_loss"], dtype=np.float64)
        if not np.isfinite(losses).any():
            return None
        return int(self.history["epoch"][int(np.nanargmin(np.where(np.isfinite(losses), losses, np.nan)))])

    def summary(self) -> dict[str, Any]:
        """One JSON-safe row: settings, final scores, losses, the validation-loss minimum, noisiness (NaN -> None)."""
        h = self.history
        val_losses = [v for v in h["val_loss"] if math.isfinite(v)]
        return {
            "name": self.name,
            "per_class": self.per_class,
            "l2": self.l2,
            "n_train": self.n_train,
            "epochs": len(h["epoch"]),
            "train_accuracy": self.train_accuracy,
            "val_accuracy": _finite(self.val_accuracy),
            "test_accuracy": self.test_accuracy,
            "gap": _finite(self.gap),
            "train_loss": _finite(h["train_loss"][-1]) if h["train_loss"] else None,
            "val_loss": _finite(h["val_loss"][-1]) if h["val_loss"] else None,
            "min_val_loss": min(val_losses) if val_losses else None,
            "min_val_loss_epoch": self.min_val_loss_epoch,
            **{f"noisiness_{k}": v for k, v in self.noisiness.items()},
            "run_dir": str(self.run_dir) if self.run_dir is not None else None,
            "seconds": self.seconds,
        }


@dataclass
class OverfitStudy:
    """All runs of one study (in order: per_class outer, l2 inner) and the settings that made them."""

    runs: list[OverfitRun]
    settings: dict[str, Any] = field(default_factory=dict)
    class_names: list[str] = field(default_factory=list)

    def run(self, per_class: int, l2: float) -> OverfitRun:
        """The run trained on ``per_class`` images per class with L2 penalty ``l2``."""
        for r in self.runs:
            if r.per_class == per_class and r.l2 == l2:
                return r
        raise KeyError(f"no run with per_class={per_class} and l2={l2:g}; runs: {[r.name for r in self.runs]}")

    def summary(self) -> list[dict[str, Any]]:
        """One JSON-safe row per run (:meth:`OverfitRun.summary`)."""
        return [r.summary() for r in self.runs]

    def to_dict(self) -> dict[str, Any]:
        """Settings, class names, and per run its summary row plus its full history (JSON-safe)."""
        return {
            "settings": self.settings,
            "class_names": list(self.class_names),
            "runs": [{**r.summary(), "history": _json_history(r.history)} for r in self.runs],
        }

    def to_json(self, path: str | Path | None = None) -> str:
        """:meth:`to_dict` as JSON text (NaN written as null); also written to ``path`` when given."""
        text = json.dumps(self.to_dict(), indent=2, allow_nan=False)
        if path is not None:
            atomic_write_text(Path(path), text + "\n")
        return text


def run_name(per_class: int, l2: float) -> str:
    return f"{per_class}-l2-{l2:g}"


def stratified_subset(data: ImageSet, per_class: int, seed: int = 0) -> np.ndarray:
    """Sorted indices of ``per_class`` images of every class, drawn with ``np.random.default_rng(seed)``.

    Each class's indices are permuted once by the seeded generator (classes in order) and the first
    ``per_class`` taken, so with one seed a smaller subset is contained in a larger one.
    """
    if per_class < 1:
        raise DataError(f"per_class must be at least 1, got {per_class}")
    rng = np.random.default_rng(seed)
    chosen = []
    for k, name in enumerate(data.class_names):
        idx = rng.permutation(np.flatnonzero(data.labels == k))
        if len(idx) < per_class:
            raise DataError(
                f"the overfitting study wants {per_class} training images per class, but class {name!r} has only "
                f"{len(idx)}: pass a smaller per_class"
            )
        chosen.append(idx[:per_class])
    return np.sort(np.concatenate(chosen))


def first_layer_weights(model: nn.Module, input_shape: Sequence[int]) -> np.ndarray:
    """The first layer's weights as images: float32 (U, C, H, W), unit ``j``'s row ``W_1[j]`` reshaped (the dense-chain
    reader finds the layer, whatever its name; MethodError for a model that is not a fully connected chain)."""
    first = dense_stages(model, input_shape, "the overfitting study")[0].linear
    w = first.weight.detach().float().cpu().numpy()
    return w.reshape(w.shape[0], *input_shape).copy()


def overfit_study(
    data: Splits,
    *,
    per_class: Sequence[int] = DEFAULT_PER_CLASS,
    l2_values: Sequence[float] = DEFAULT_L2,
    hidden: int = 300,
    activation: str = "tanh",
    optimizer: str = "lbfgs",
    epochs: int = DEFAULT_EPOCHS,
    lbfgs_iterations: int = DEFAULT_LBFGS_ITERATIONS,
    standardize: str = "image",
    seed: int = 0,
    out: str | Path | None = None,
    progress: bool = False,
    device: str = "cpu",
) -> OverfitStudy:
    """Train one run per (``per_class``, ``l2``) pair (module docstring) and return them all.

    Train subsets come from :func:`stratified_subset` of ``data.train`` with ``seed``; validation is all of
    ``data.val``, test all of ``data.test``. For L-BFGS one epoch is one full-batch step of
    ``lbfgs_iterations`` iterations, so a few iterations per epoch give a learning curve with ``epochs`` points.
    With ``out``, each run's folder is ``out/<per_class>-l2-<λ>/`` (a run folder as ``nnsee train`` writes it,
    less the resume state) and the study is written to ``out/study.json``. Every run trains on ``device``.
    """
    out_dir = Path(out) if out is not None else None
    settings = {
        "data": data.spec,
        "per_class": [int(p) for p in per_class],
        "l2_values": [float(v) for v in l2_values],
        "model": {"name": "mlp", "hidden": [int(hidden)], "activation": activation},
        "optimizer": optimizer,
        "epochs": int(epochs),
        "lbfgs_iterations": int(lbfgs_iterations),
        "standardize": standardize,
        "seed": int(seed),
    }
    runs: list[OverfitRun] = []
    for size in settings["per_class"]:
        index = stratified_subset(data.train, size, seed)
        subset = Splits(data.train.subset(index), data.val, data.test,
                        {**data.spec, "overfit_study": {"per_class": size, "seed": seed}})
        for l2 in settings["l2_values"]:
            started = time.perf_counter()
            config = TrainConfig(optimizer=optimizer, epochs=epochs, l2=l2, lbfgs_iterations=lbfgs_iterations,
                                 standardize=standardize, seed=seed, device=device)
            torch.manual_seed(seed)  # the same initial weights for every run
            model = build_model("mlp", data.shape, len(data.class_names), hidden=[hidden], activation=activation)
            run_dir = out_dir / run_name(size, l2) if out_dir is not None else None
            # Study runs are never resumed: written once, at the end, without resume state.
            result = fit(model, subset, config, run_dir, save="end", progress=progress)
            if result.status == "interrupted":  # fit caught Ctrl-C: stop the whole study, not just this run
                raise KeyboardInterrupt
            weights = first_layer_weights(result.model, data.shape)
            train_accuracy = evaluate(result.model, subset.train, result.standardizer)["accuracy"]
            val_accuracy = result.metrics["val"]["accuracy"]
            run = OverfitRun(
                per_class=size,
                l2=l2,
                n_train=len(index),
                history={k: list(v) for k, v in result.history.items()},
                noisiness=noisiness(weights),
                train_accuracy=float(train_accuracy),
                val_accuracy=float(val_accuracy) if val_accuracy is not None else float("nan"),
                test_accuracy=result.metrics["test"]["accuracy"],
                gap=float(train_accuracy - val_accuracy) if val_accuracy is not None else float("nan"),
                incoming_weights=weights,
                run_dir=run_dir,
                seconds=time.perf_counter() - started,
            )
            runs.append(run)
            if progress:
                print(f"overfit study {run.name}: train {run.train_accuracy:.3f}, val {run.val_accuracy:.3f}, "
                      f"noisiness {run.noisiness['high_frequency_share_mean']:.3f} ({run.seconds:.1f} s)",
                      file=sys.stderr)
    study = OverfitStudy(runs, settings, list(data.class_names))
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        study.to_json(out_dir / "study.json")
    return study


def _finite(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def _json_history(history: dict[str, list[float]]) -> dict[str, list[float | None]]:
    return {k: [_finite(float(v)) for v in values] for k, values in history.items()}
