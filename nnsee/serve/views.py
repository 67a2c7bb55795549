"""What the page shows, as JSON-ready dicts: explanations of one input, class templates, unit cards.

Each loaded run holds a lock: guided backprop and the deconvnet put hooks on the model's ReLU modules, so two
requests must never run a method on the same model at once (different runs run in parallel).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from nnsee.methods import LinearExplanation, MethodError, explain
from nnsee.methods.base import dense_stages, softmax
from nnsee.render import data_uri, image_tile, symmetric_scale, weight_tile
from nnsee.train import load_run

CNN_METHODS = ("saliency", "occlusion", "guided-backprop")
TOP_UNITS = 9


@dataclass
class LoadedRun:
    name: str
    run: Any
    kind: str  # softmax | mlp | cnn | other
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.run.input_shape)

    @property
    def upscale(self) -> int:
        return max(1, round(112 / self.shape[-1]))

    def summary(self) -> dict[str, Any]:
        return {"name": self.name, "class_names": self.run.class_names, "input_shape": list(self.shape),
                "kind": self.kind, "has_units": self.kind == "mlp", "has_templates": self.kind in ("softmax", "mlp"),
                "n_units": n_units(self) if self.kind == "mlp" else 0}


def model_kind(model: nn.Module, shape: tuple[int, ...]) -> str:
    if any(isinstance(m, nn.Conv2d) for m in model.modules()):
        return "cnn"
    try:
        n = len(dense_stages(model, shape, "serve"))
    except MethodError:
        return "other"
    return {1: "softmax", 2: "mlp"}.get(n, "other")


def load(path: Path, name: str) -> LoadedRun:
    run = load_run(path)
    return LoadedRun(name, run, model_kind(run.model, tuple(run.input_shape)))


def _tile(a: np.ndarray, scale: float, upscale: int) -> str:
    return data_uri(weight_tile(a, scale, upscale))


def explain_image(lr: LoadedRun, image: np.ndarray) -> dict[str, Any]:
    """Prediction, probabilities and maps for one image (C, H, W) in [0, 1]."""
    run, names, up = lr.run, lr.run.class_names, lr.upscale
    x_std = run.standardizer.transform(image[None]) if run.standardizer is not None else image[None]
    out: dict[str, Any] = {"run": lr.name, "kind": lr.kind, "class_names": names, "blank": False,
                           "input": data_uri(image_tile(image, up))}
    with lr.lock:
        if lr.kind in ("softmax", "mlp"):
            e = explain(run.model, x_std[0], lr.shape)
            logits, probs = e.logits, e.probabilities
            if isinstance(e, LinearExplanation):
                scale = symmetric_scale(e.contributions)
                out["maps"] = [{"label": f"{n}: x ⊙ W", "value": float(e.contribution_sum[k] + e.bias[k]),
                                "src": _tile(e.contributions[k], scale, up)} for k, n in enumerate(names)]
            else:
                k = int(np.argmax(logits))
                scale = symmetric_scale(e.pixel_contributions)
                out["units"] = [{"unit": int(u), "activation": float(e.hidden[u]), "vote": float(e.votes[k, u]),
                                 "votes": [float(v) for v in e.votes[:, u]],
                                 "src": _tile(e.pixel_contributions[i], scale, up)}
                                for i, u in enumerate(e.top_units[:TOP_UNITS])]
                out["maps"] = []
        else:
            from nnsee.methods.attribution.catalog import attribute
            from nnsee.train.evaluate import predict_logits

            logits = predict_logits(run.model, x_std)[0]
            probs = softmax(logits[None])[0]
            k = int(np.argmax(logits))
            out["maps"] = []
            for method in CNN_METHODS:
                m, _ = attribute(method, run.model, x_std, np.array([k]), "logit")
                shown = m[0].sum(axis=0, keepdims=True)
                out["maps"].append({"label": f"{method} ({names[k]})", "value": float(np.abs(shown).max()),
                                    "src": _tile(shown, symmetric_scale(shown), up)})
    k = int(np.argmax(logits))
    out.update(predicted=k, label=names[k], logits=[float(v) for v in logits],
               probabilities=[float(p) for p in probs])
    return out


def templates(lr: LoadedRun) -> dict[str, Any]:
    from nnsee.methods import class_templates, effective_templates

    with lr.lock:
        w = class_templates(lr.run.model, lr.shape) if lr.kind == "softmax" else effective_templates(
            lr.run.model, lr.shape)
    scale = symmetric_scale(w)
    return {"run": lr.name, "scale": scale, "effective": lr.kind != "softmax",
            "templates": [{"label": n, "src": _tile(w[k], scale, lr.upscale)}
                          for k, n in enumerate(lr.run.class_names)]}


def n_units(lr: LoadedRun) -> int:
    return int(dense_stages(lr.run.model, lr.shape, "unit cards")[0].linear.out_features)


def unit_card(lr: LoadedRun, j: int) -> dict[str, Any]:
    """Incoming weights (PNG), outgoing weights to every class and bias of hidden unit ``j``."""
    from nnsee.methods import hidden_biases, incoming_weights, outgoing_weights

    layer = dense_stages(lr.run.model, lr.shape, "unit cards")[0].name
    with lr.lock:
        w_in = incoming_weights(lr.run.model, lr.shape, layer)[j]
        w_out = outgoing_weights(lr.run.model, layer)[:, j]
        bias = float(hidden_biases(lr.run.model, layer)[j])
    names = lr.run.class_names
    return {"run": lr.name, "unit": j, "bias": bias, "incoming": _tile(w_in, symmetric_scale(w_in), lr.upscale),
            "incoming_scale": symmetric_scale(w_in), "outgoing": [float(v) for v in w_out], "class_names": names,
            "promotes": names[int(np.argmax(w_out))], "suppresses": names[int(np.argmin(w_out))]}
