"""The standardization study: the same softmax regression trained on the same images under each mode.

The lecture's argument ("all inputs x should have the same magnitude"): with ``none``, bright images get large
scores whatever their shape and the templates must compensate; ``image`` gives every image mean 0 and norm √D, so
the templates compare shapes; ``pixel`` z-scores every pixel (rarely-lit border pixels get blown up).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from nnsee.data.imageset import Splits
from nnsee.data.standardize import MODES
from nnsee.methods.standardization_view import standardization_norms, standardization_views
from nnsee.methods.templates import class_templates
from nnsee.models.registry import build_model
from nnsee.train.config import TrainConfig
from nnsee.train.fit import fit


@dataclass
class ModeResult:
    mode: str
    templates: np.ndarray  # (K, C, H, W) the softmax weights W[k]
    val_accuracy: float
    test_accuracy: float
    norms: np.ndarray  # (n,) ‖x'‖ of sample training images under this mode


@dataclass
class StandardizationStudy:
    results: list[ModeResult]
    examples: list[dict[str, np.ndarray]] = field(default_factory=list)  # per example image: {mode: (C, H, W)}
    originals: np.ndarray = field(default_factory=lambda: np.zeros((0, 1, 1, 1)))
    class_names: list[str] = field(default_factory=list)


def standardization_study(data: Splits, modes: tuple[str, ...] = MODES, epochs: int = 15, seed: int = 0,
                          n_examples: int = 4, device: str = "cpu") -> StandardizationStudy:
    """Train ``softmax`` (Adam, same seed and initial weights) once per mode on ``device``; keep templates and
    scores."""
    results = []
    reference = data.train.images[: min(len(data.train), 5000)]
    norms = standardization_norms(reference[:1000], reference)
    for mode in modes:
        torch.manual_seed(seed)
        model = build_model("softmax", data.shape, data.train.n_classes)
        config = TrainConfig(epochs=epochs, standardize=mode, seed=seed, device=device)
        result = fit(model, data, config, progress=False)
        results.append(ModeResult(mode, class_templates(result.model, data.shape),
                                  float(result.metrics["val"]["accuracy"] or 0.0),
                                  float(result.metrics["test"]["accuracy"] or 0.0), norms[mode]))
    picks = np.linspace(0, len(data.train) - 1, num=min(n_examples, len(data.train))).astype(int)
    examples = [standardization_views(data.train.images[i], reference) for i in picks]
    return StandardizationStudy(results, examples, data.train.images[picks], list(data.class_names))
