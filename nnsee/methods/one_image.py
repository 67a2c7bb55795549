"""Explaining one image: the one presenter that ``nnsee explain``, the report's gallery and the live page share.

``view`` is ``"contributions"`` — the dot product, exact: ``z_k = Σ_i x_i W_k,i + b_k`` with one map ``x ⊙ W_k`` per
class for softmax regression, or per hidden unit ``x ⊙ W_1[j]`` (the units that voted most, ``W_out[k, j] h_j``) for
a one-hidden-layer MLP — or the name of a registered attribution method, which maps the target class (default: the
predicted one). Every front end draws the same :class:`ImageExplanation`: prediction, probabilities and panels.
The image comes standardized, as the model saw it (``Run.standardize`` is the one place that does it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from torch import nn

from nnsee.errors import MethodError, not_one_of
from nnsee.methods.attribution.method import Attribution
from nnsee.methods.attribution.registry import METHODS
from nnsee.methods.base import evaluating, softmax, to_batch, to_numpy
from nnsee.methods.contributions import LinearExplanation, MLPExplanation, explain
from nnsee.models.capabilities import Capabilities, capabilities

CONTRIBUTIONS = "contributions"
#: Below this spread (max − min of the image in [0, 1], as decoded at the model's size) an image is *blank*: it has
#: no contrast for any map to show, and front ends say so instead of drawing one.
BLANK_SPREAD = 1e-3


def is_blank(image: np.ndarray) -> bool:
    """True for an image (values in [0, 1]) with no contrast: ``max − min < BLANK_SPREAD``, or no pixels."""
    return bool(image.size == 0 or float(image.max() - image.min()) < BLANK_SPREAD)


def check_view(view: str, target: int | None = None, output: str = "logit", options: dict | None = None) -> None:
    """Refuse arguments ``view`` would ignore: ``contributions`` draws every class's ``x ⊙ W_k`` (softmax) or the
    units behind the predicted class (MLP), as logits, and takes no target, output or option."""
    if view != CONTRIBUTIONS:
        if view not in METHODS:
            raise MethodError(not_one_of("method", view, view_names()))
        return
    ignored = [name for name, given in (("--target", target is not None), ("--output softmax", output != "logit"))
               if given]
    if ignored:
        verb = "do" if len(ignored) > 1 else "does"
        raise MethodError(f"{' and '.join(ignored)} {verb} not apply to contributions (it shows every class, or the "
                          "units behind the predicted class, as logits): to explain one class pick an attribution "
                          "method, e.g. --method gradient-x-input (x ⊙ W_k for a softmax run)")
    if options:
        raise MethodError(f"contributions take no options, got {', '.join(sorted(options))}")


def view_names(model: nn.Module | None = None, input_shape: Sequence[int] | None = None) -> tuple[str, ...]:
    """``contributions`` and every registered method; with ``model``, only those that apply to it."""
    return (CONTRIBUTIONS, *METHODS) if model is None else views_for(capabilities(model, input_shape))


def views_for(caps: Capabilities) -> tuple[str, ...]:
    """The views that apply to a model with capabilities ``caps`` (read once, by the caller)."""
    exact = (CONTRIBUTIONS,) if caps.contributions else ()
    return exact + tuple(name for name, m in METHODS.items() if m.refusal(caps) is None)


@dataclass(frozen=True)
class Panel:
    """One map to draw (C', H, W) in input space: of class ``index`` (``kind="class"``), hidden unit ``index``
    (``"unit"``), or an attribution of class ``index`` (``"attribution"``); ``value`` is its number (the class's
    logit, the unit's activation, the map's largest magnitude)."""

    kind: str
    index: int
    map: np.ndarray
    value: float


@dataclass(frozen=True)
class ImageExplanation:
    view: str
    logits: np.ndarray  # (K,)
    probabilities: np.ndarray  # (K,)
    target: int  # the class explained (contributions: the predicted class)
    output: str
    panels: list[Panel]
    dot: LinearExplanation | MLPExplanation | None = None  # the contributions, exact
    attribution: Attribution | None = None  # the method's result for this image (N = 1)
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def predicted(self) -> int:
        return int(np.argmax(self.logits))


def explain_image(model: nn.Module, x_std: np.ndarray, view: str = CONTRIBUTIONS, target: int | None = None,
                  output: str = "logit", input_shape: Sequence[int] | None = None, top_units: int | None = None,
                  **options: Any) -> ImageExplanation:
    """Explain one standardized image ``x_std`` (C, H, W) by ``view`` (see the module doc)."""
    shape = tuple(input_shape) if input_shape is not None else tuple(np.shape(x_std))
    check_view(view, target, output, options)
    if view == CONTRIBUTIONS:
        return _contributions(model, x_std, shape, top_units)
    with evaluating(model):
        logits = to_numpy(model(to_batch(x_std, shape, model)))[0]
    probabilities = softmax(logits[None])[0]
    k = int(np.argmax(logits)) if target is None else int(target)
    result = METHODS[view].attribute(model, np.asarray(x_std)[None], np.array([k]), output, **options)
    shown = result.input_maps(shape)[0].sum(axis=0, keepdims=True)  # channels summed for display
    panel = Panel("attribution", k, shown, float(np.abs(shown).max()))
    return ImageExplanation(view, logits, probabilities, k, output, [panel], attribution=result,
                            extras=dict(result.extras))


def _contributions(model: nn.Module, x_std: np.ndarray, shape: tuple[int, ...],
                   top_units: int | None) -> ImageExplanation:
    e = explain(model, x_std, shape)
    k = int(np.argmax(e.logits))
    if isinstance(e, LinearExplanation):
        panels = [Panel("class", c, e.contributions[c], float(e.contribution_sum[c] + e.bias[c]))
                  for c in range(len(e.logits))]
    else:
        units = e.top_units if top_units is None else e.top_units[:top_units]
        panels = [Panel("unit", int(u), e.pixel_contributions[i], float(e.hidden[u])) for i, u in enumerate(units)]
    return ImageExplanation(CONTRIBUTIONS, e.logits, e.probabilities, k, "logit", panels, dot=e)

