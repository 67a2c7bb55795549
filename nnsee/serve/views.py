"""What the page shows, as JSON-ready dicts: explanations of one input, class templates, unit cards.

Each loaded run holds a lock: guided backprop and the deconvnet put hooks on the model's ReLU modules, so two
requests must never run a method on the same model at once (different runs run in parallel). What a run offers
(templates, unit cards, which methods) is read from its model's capabilities, once, at load.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from nnsee.data.imageset import Splits
from nnsee.errors import MethodError, not_one_of
from nnsee.methods import one_image
from nnsee.methods.attribution.registry import METHODS
from nnsee.methods.base import dense_stages
from nnsee.methods.one_image import CONTRIBUTIONS, ImageExplanation, views_for
from nnsee.models.capabilities import Capabilities, capabilities
from nnsee.render import data_uri, image_tile, symmetric_scale, weight_tile
from nnsee.train.run import Run, load_run

TOP_UNITS = 9


@dataclass
class LoadedRun:
    name: str
    run: Run
    caps: Capabilities
    lock: threading.Lock = field(default_factory=threading.Lock)
    data_lock: threading.Lock = field(default_factory=threading.Lock)
    _splits: Splits | None = None

    def splits(self) -> Splits:
        """The run's own data set (its stored spec, streamed when it would not fit in memory), loaded at the first
        view that needs images (drill-down, nearest images, the representation map) and kept, never downloaded; a
        one-line :class:`~nnsee.errors.DataError` when it is no longer where the run found it."""
        from nnsee.data.spec import load_splits

        with self.data_lock:
            if self._splits is None:
                self._splits = load_splits(self.run.data_spec, download=False)
            return self._splits

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.run.input_shape)

    @property
    def kind(self) -> str:
        return self.caps.kind

    @property
    def upscale(self) -> int:
        return max(1, round(112 / self.shape[-1]))

    @cached_property
    def views(self) -> tuple[str, ...]:
        """What the page can show for this run: ``contributions`` (dense chains) and the methods that apply, read
        once from its capabilities (the registry as it was when the run was loaded)."""
        return views_for(self.caps)

    @property
    def default_views(self) -> tuple[str, ...]:
        """Shown when the page asks for no view: the exact contributions, else the live methods side by side."""
        if CONTRIBUTIONS in self.views:
            return (CONTRIBUTIONS,)
        return tuple(v for v in self.views if METHODS[v].live)

    def summary(self) -> dict[str, Any]:
        return {"name": self.name, "class_names": self.run.class_names, "input_shape": list(self.shape),
                "kind": self.kind, "has_units": self.caps.one_hidden_layer, "has_templates": self.caps.templates,
                "n_units": n_units(self) if self.caps.one_hidden_layer else 0, "views": list(self.views),
                "default_views": list(self.default_views)}


def load(path: Path, name: str, device: str = "cpu") -> LoadedRun:
    """The run at ``path`` with its model on ``device`` (where the page's requests compute)."""
    run = load_run(path, device=device)
    return LoadedRun(name, run, capabilities(run.model, tuple(run.input_shape)))


def isolate(text: str) -> str:
    """``text`` between FIRST STRONG ISOLATE and POP DIRECTIONAL ISOLATE (Unicode bidi, UAX #9): a class name with
    a right-to-left override cannot reorder the label around it."""
    return f"\u2068{text}\u2069"


def _tile(a: np.ndarray, scale: float, upscale: int) -> str:
    return data_uri(weight_tile(a, scale, upscale))


def explain_image(loaded: LoadedRun, image: np.ndarray, view: str | None = None) -> dict[str, Any]:
    """Prediction, probabilities and maps for one image (C, H, W) in [0, 1]; ``view``: one of ``loaded.views``
    (None: its default views)."""
    if view is not None and view not in loaded.views:
        raise MethodError(not_one_of(f"view for run {loaded.name!r}", view, loaded.views))
    run, names, up = loaded.run, loaded.run.class_names, loaded.upscale
    x_std = run.standardize(image[None])[0]
    out: dict[str, Any] = {"run": loaded.name, "kind": loaded.kind, "class_names": names, "blank": False,
                           "input": data_uri(image_tile(image, up)), "maps": []}
    with loaded.lock:
        shown = [one_image.explain_image(run.model, x_std, v, input_shape=loaded.shape, top_units=TOP_UNITS)
                 for v in ((view,) if view else loaded.default_views)]
    for e in shown:
        if e.view == CONTRIBUTIONS:
            _contributions(out, e, names, up)
        else:
            (panel,) = e.panels
            out["maps"].append({"label": f"{e.view} ({isolate(names[panel.index])})", "value": panel.value,
                                "src": _tile(panel.map, symmetric_scale(panel.map), up)})
    k = shown[0].predicted
    out.update(predicted=k, label=names[k], logits=[float(v) for v in shown[0].logits],
               probabilities=[float(p) for p in shown[0].probabilities])
    return out


def _contributions(out: dict[str, Any], e: ImageExplanation, names: list[str], up: int) -> None:
    """Softmax regression: ``x ⊙ W_k`` per class; MLP: the top units' ``x ⊙ W_1[j]`` and their votes."""
    scale = symmetric_scale(np.stack([p.map for p in e.panels]))
    if all(p.kind == "class" for p in e.panels):
        out["maps"] += [{"label": f"{isolate(names[p.index])}: x ⊙ W", "value": p.value, "src": _tile(p.map, scale, up)}
                        for p in e.panels]
        return
    d, k = e.dot, e.predicted
    out["units"] = [{"unit": p.index, "activation": p.value, "vote": float(d.votes[k, p.index]),  # type: ignore[union-attr]
                     "votes": [float(v) for v in d.votes[:, p.index]],  # type: ignore[union-attr]
                     "src": _tile(p.map, scale, up)} for p in e.panels]


def templates(loaded: LoadedRun) -> dict[str, Any]:
    from nnsee.methods import class_templates, effective_templates

    linear = loaded.caps.dense_layers == 1
    with loaded.lock:
        w = (class_templates if linear else effective_templates)(loaded.run.model, loaded.shape)
    scale = symmetric_scale(w)
    return {"run": loaded.name, "scale": scale, "effective": not linear,
            "templates": [{"label": n, "src": _tile(w[k], scale, loaded.upscale)}
                          for k, n in enumerate(loaded.run.class_names)]}


def n_units(loaded: LoadedRun) -> int:
    return int(dense_stages(loaded.run.model, loaded.shape, "unit cards")[0].linear.out_features)


def unit_card(loaded: LoadedRun, j: int) -> dict[str, Any]:
    """Incoming weights (PNG), outgoing weights to every class and bias of hidden unit ``j``."""
    from nnsee.methods import hidden_biases, incoming_weights, outgoing_weights

    layer = loaded.caps.hidden_layers[0]
    with loaded.lock:
        w_in = incoming_weights(loaded.run.model, loaded.shape, layer)[j]
        w_out = outgoing_weights(loaded.run.model, layer)[:, j]
        bias = float(hidden_biases(loaded.run.model, layer)[j])
    names = loaded.run.class_names
    return {"run": loaded.name, "unit": j, "bias": bias,
            "incoming": _tile(w_in, symmetric_scale(w_in), loaded.upscale), "incoming_scale": symmetric_scale(w_in),
            "outgoing": [float(v) for v in w_out], "class_names": names,
            "promotes": names[int(np.argmax(w_out))], "suppresses": names[int(np.argmin(w_out))]}
