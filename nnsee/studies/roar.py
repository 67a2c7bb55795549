"""ROAR, RemOve And Retrain (Hooker et al. 2019): do a method's most important pixels carry what a model learns?

Deletion curves ask a trained model about images it never saw with holes in them; ROAR retrains instead. A model is
trained once on the data (seed s); every registered method named maps every training, validation and test image for
that model's predicted class (not the label, which would leak the class into the removal pattern). For each fraction
f, the top ``round(f · P)`` pixel positions of each image in its map's order (:func:`order_from_maps`: the map summed
over channels, largest first) are replaced by that image's own per-channel mean, and the same model is retrained
from the same seed on the changed images and tested on the changed test images. A method whose pixels matter makes
the accuracy fall faster than a random order of the positions does (the ``random`` row, seeded).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from nnsee.data.imageset import ImageSet, Splits
from nnsee.errors import DataError, MethodError, not_one_of
from nnsee.methods.deletion_insertion import order_from_maps

METHODS = ("saliency", "gradient-x-input", "integrated-gradients", "occlusion")
RANDOM = "random"
FRACTIONS = (0.1, 0.3, 0.5, 0.7)
#: Images mapped per call of a method (integrated gradients holds steps × this many gradients at once).
CHUNK = 64
#: Options the study gives the methods: integrated gradients with 16 path points (Gauss–Legendre) instead of 50,
#: which keeps its maps of every image a few times cheaper; the ranking of pixels barely moves.
METHOD_OPTIONS: dict[str, dict[str, Any]] = {"integrated-gradients": {"steps": 16}}


@dataclass
class RoarStudy:
    """Test accuracy (``accuracy[method][j]`` at ``fractions[j]``) of the model retrained on each method's
    remove-the-top-f images; ``base_accuracy`` at f = 0. ``examples[method]``: test images (n, F, C, H, W) with
    each fraction removed, for the page. ``seconds``: the whole study (``map_seconds``: computing the maps)."""

    fractions: list[float]
    methods: list[str]
    accuracy: dict[str, list[float]]
    base_accuracy: float
    model: dict[str, Any]
    epochs: int
    seed: int
    seconds: float
    map_seconds: float
    class_names: list[str] = field(default_factory=list)
    original: np.ndarray = field(default_factory=lambda: np.zeros((0, 1, 1, 1)))
    examples: dict[str, np.ndarray] = field(default_factory=dict)
    n_train: int = 0
    method_options: dict[str, dict[str, Any]] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """JSON-ready: the fractions, each method's accuracies (f = 0 first), the model and the time."""
        return {"fractions": [0.0, *self.fractions], "base_accuracy": self.base_accuracy,
                "accuracy": {m: [self.base_accuracy, *a] for m, a in self.accuracy.items()},
                "model": self.model, "epochs": self.epochs, "seed": self.seed, "n_train": self.n_train,
                "method_options": self.method_options, "seconds": round(self.seconds, 2),
                "map_seconds": round(self.map_seconds, 2)}


def remove_top(images: np.ndarray, order: np.ndarray, fraction: float) -> np.ndarray:
    """A copy of ``images`` (N, C, H, W) with the first ``round(fraction · H·W)`` positions of each row of ``order``
    (N, H·W) set to that image's own per-channel mean (taken before anything is removed)."""
    n, c, h, w = images.shape
    k = int(round(fraction * h * w))
    flat = np.array(images, dtype=np.float32, copy=True).reshape(n, c, h * w)
    mean = flat.mean(axis=2, keepdims=True)
    gone = np.zeros((n, 1, h * w), dtype=bool)
    np.put_along_axis(gone, order[:, None, :k], True, axis=2)
    return np.where(gone, mean, flat).reshape(n, c, h, w)


def check_fractions(fractions: Sequence[float]) -> list[float]:
    """Sorted distinct fractions, each in (0, 1), or a one-line error."""
    chosen = sorted(set(float(f) for f in fractions))
    if not chosen or not all(0 < f < 1 for f in chosen):
        raise MethodError(f"fractions must lie between 0 and 1 (exclusive), e.g. 0.1,0.3,0.5,0.7; got "
                          f"{list(fractions)}")
    return chosen


def roar_study(data: Splits, *, methods: Sequence[str] = METHODS, fractions: Sequence[float] = FRACTIONS,
               model: str = "mlp", model_options: dict[str, Any] | None = None, epochs: int = 10,
               batch_size: int = 64, seed: int = 0, device: str = "cpu", n_examples: int = 3,
               per_class: int | None = None, say: Callable[[str], None] | None = None) -> RoarStudy:
    """Train ``model`` on ``data``, map every image with each of ``methods`` (registered names), and for each
    fraction retrain it from the same seed on the images with their top pixels removed; a random order too.
    ``per_class``: train on that many training images of each class (a seeded stratified subset; None: all)."""
    from nnsee.methods.attribution.registry import METHODS as REGISTERED
    from nnsee.models.registry import build_model
    from nnsee.train.config import TrainConfig
    from nnsee.train.fit import fit

    for name in methods:
        if name not in REGISTERED:
            raise MethodError(not_one_of("method", name, REGISTERED))
    fractions = check_fractions(fractions)
    if any(part.streamed for part in (data.train, data.val, data.test)):
        raise DataError("roar retrains on changed copies of every image, so the data set must be in memory: load it "
                        "without --stream")
    say = say or (lambda _: None)
    if per_class is not None:
        from nnsee.studies.overfit import stratified_subset

        data = Splits(data.train.subset(stratified_subset(data.train, per_class, seed)), data.val, data.test,
                      spec=data.spec)
    options = dict(model_options or {})
    config = TrainConfig(epochs=epochs, batch_size=batch_size, seed=seed, device=device)
    started = time.perf_counter()

    def train(splits: Splits) -> tuple[Any, float]:
        torch.manual_seed(seed)
        net = build_model(model, splits.shape, splits.train.n_classes, **options)
        result = fit(net, splits, config, progress=False)
        return result, float(result.metrics["test"]["accuracy"] or 0.0)

    base, base_accuracy = train(data)
    say(f"trained on the original images: test accuracy {base_accuracy:.3f}")
    parts = {"train": data.train, "val": data.val, "test": data.test}
    images = {k: np.asarray(p.images, dtype=np.float32) for k, p in parts.items()}
    mapped = time.perf_counter()
    orders: dict[str, dict[str, np.ndarray]] = {}
    for name in methods:
        chosen = METHOD_OPTIONS.get(name, {})
        orders[name] = {k: _order(base, REGISTERED[name], x, chosen) for k, x in images.items()}
    map_seconds = time.perf_counter() - mapped
    rng = np.random.default_rng(seed)
    positions = int(np.prod(data.shape[1:]))
    orders[RANDOM] = {k: np.stack([rng.permutation(positions) for _ in range(len(x))]) for k, x in images.items()}
    shown = np.linspace(0, len(data.test) - 1, num=min(n_examples, len(data.test))).astype(int)
    accuracy: dict[str, list[float]] = {}
    examples: dict[str, np.ndarray] = {}
    for name, order in orders.items():
        accuracy[name], rows = [], []
        for f in fractions:
            changed = {k: remove_top(images[k], order[k], f) for k in parts}
            splits = Splits(*(ImageSet(changed[k], parts[k].labels, list(parts[k].class_names), source=f"roar {name}")
                              for k in parts), spec=data.spec)
            accuracy[name].append(train(splits)[1])
            rows.append(changed["test"][shown])
            say(f"{name}: top {f:.0%} removed, retrained: test accuracy {accuracy[name][-1]:.3f}")
        examples[name] = np.stack(rows, axis=1)
    return RoarStudy(fractions, list(orders), accuracy, base_accuracy, {"name": model, **options}, epochs, seed,
                     time.perf_counter() - started, map_seconds, list(data.class_names), images["test"][shown],
                     examples, len(data.train), METHOD_OPTIONS)


def _order(result: Any, method: Any, raw: np.ndarray, options: dict[str, Any]) -> np.ndarray:
    """Positions of every image most important first by ``method``'s map of the trained model's predicted class."""
    from nnsee.train.evaluate import predict_logits

    model, standardize = result.model, result.standardizer.transform
    out = []
    for start in range(0, len(raw), CHUNK):
        x = standardize(raw[start:start + CHUNK])
        target = predict_logits(model, x).argmax(1)
        maps = method.attribute(model, x, target, **options).input_maps(x.shape[1:])
        out.append(order_from_maps(maps, x.shape))
    return np.concatenate(out) if out else np.zeros((0, int(np.prod(raw.shape[2:]))), dtype=np.int64)
