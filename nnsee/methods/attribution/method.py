"""The one seam of the attribution methods: a result type, an option type and a method descriptor.

Every registered method is called the same way, ``method.attribute(model, x, target, output, **options)``, and
returns an :class:`Attribution` whose ``maps`` are ``(N, C', H, W)`` in input space (``C'`` is 1 or C) or
``(N, h, w)`` at a layer (Grad-CAM before upsampling). Each descriptor says what the method needs from a model
(``gradients``, ``conv_layer``, ``dense_chain``), its options, and whether it is *complete*: its map sums to the
score difference it explains, ``Σ map = f(x) − f(x′)`` (up to ``extras["convergence_delta"]`` where reported).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from nnsee.errors import MethodError, not_one_of
from nnsee.models.capabilities import Capabilities

NEEDS = {
    "gradients": "gradients of the score with respect to the input",
    "conv_layer": "a convolutional layer with feature maps (N, K, h, w)",
    "dense_chain": "a fully connected chain (Flatten, Linear layers, elementwise activations)",
    "relu_modules": "nn.ReLU modules whose backward rule it changes",
}
SPACES = ("input", "layer")


@dataclass(frozen=True)
class Attribution:
    """What a method says about each input: ``maps`` (N, C', H, W) in input space or (N, h, w) at a layer, and
    method-specific numbers in ``extras`` (integrated gradients' ``convergence_delta``, Grad-CAM's ``layer``, …)."""

    method: str
    maps: np.ndarray
    space: str = "input"
    extras: dict[str, Any] = field(default_factory=dict)

    def input_maps(self, image_shape: tuple[int, ...]) -> np.ndarray:
        """Maps (N, C', H, W) in input space; a layer map is resized bilinearly to the image's (H, W)."""
        if self.space == "input":
            return self.maps
        maps = torch.from_numpy(np.ascontiguousarray(self.maps, dtype=np.float64))[:, None]
        size = tuple(int(s) for s in image_shape[-2:])
        return torch.nn.functional.interpolate(maps, size=size, mode="bilinear", align_corners=False).numpy()


@dataclass(frozen=True)
class Option:
    """One option of a method: its name, type, default (None: chosen from the model and input), help line, and for
    numbers the closed range ``[low, high]`` a value must lie in (finite, so work and memory stay bounded)."""

    name: str
    type: type
    default: Any
    help: str
    choices: tuple[Any, ...] | None = None
    low: float | None = None
    high: float | None = None

    def check(self, value: Any) -> Any:
        """``value`` as this option's type, or a :class:`MethodError` saying what is accepted."""
        if self.choices is not None and value not in self.choices:
            raise MethodError(not_one_of(self.name, value, self.choices))
        if value is None:
            return value
        kind = {int: "a whole number", float: "a number", str: "a text"}.get(self.type, self.type.__name__)
        shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
        if isinstance(value, bool) and self.type is not bool:
            raise MethodError(f"option {self.name} takes {kind}, got {shown}")
        if not isinstance(value, self.type):
            try:
                value = self.type(value)
            except (TypeError, ValueError, OverflowError):
                raise MethodError(f"option {self.name} takes {kind}, got {shown}") from None
        if self.type not in (int, float):
            return value
        low = -math.inf if self.low is None else self.low
        high = math.inf if self.high is None else self.high
        finite = self.type is int or math.isfinite(value)  # an int is finite (and may be too large for a float)
        if not (finite and low <= value <= high):
            raise MethodError(f"option {self.name} takes {kind} from {low:g} to {high:g}, got {shown}")
        return value


Run = Callable[..., Attribution]


@dataclass(frozen=True)
class Method:
    """A registered attribution method: ``run(model, x, target, output, **options) -> Attribution``."""

    name: str
    run: Run
    summary: str
    needs: frozenset[str] = frozenset({"gradients"})
    options: tuple[Option, ...] = ()
    complete: bool = False
    space: str = "input"
    live: bool = False  # drawn by default on the live page (a pass or a few: fast enough for every stroke)

    def __post_init__(self) -> None:
        unknown = set(self.needs) - set(NEEDS)
        if unknown or self.space not in SPACES:
            raise ValueError(f"method {self.name!r}: needs must be among {sorted(NEEDS)}, space among {SPACES}")

    def refusal(self, caps: Capabilities) -> str | None:
        """Why this method does not apply to a model with capabilities ``caps``, or None when it does."""
        if "conv_layer" in self.needs and not caps.conv_layers:
            return f"{self.name} needs {NEEDS['conv_layer']}; this model has none"
        if "dense_chain" in self.needs and not caps.dense_chain:
            return f"{self.name} needs {NEEDS['dense_chain']}; this model is not one"
        if "relu_modules" in self.needs and caps.relu_rule is not None:
            return f"{self.name} needs {NEEDS['relu_modules']}; {caps.relu_rule}"
        return None

    def attribute(self, model: nn.Module, x: np.ndarray | torch.Tensor, target: Any, output: str = "logit",
                  **options: Any) -> Attribution:
        """Run the method with ``options`` checked against its declared ones (unknown names are refused)."""
        declared = {o.name: o for o in self.options}
        unknown = sorted(set(options) - set(declared))
        if unknown:
            raise MethodError(f"{self.name} has no option {', '.join(unknown)}; its options: "
                              f"{', '.join(declared) or 'none'}")
        values = {name: declared[name].check(value) for name, value in options.items()}
        return self.run(model, x, target, output, **values)


def describe(methods: Mapping[str, Method]) -> list[dict[str, Any]]:
    """JSON-ready descriptions of ``methods`` for front ends (name, summary, needs, options, complete, space)."""
    return [{"name": m.name, "summary": m.summary, "needs": sorted(m.needs), "complete": m.complete,
             "space": m.space, "live": m.live,
             "options": [{"name": o.name, "default": o.default, "help": o.help, "low": o.low, "high": o.high}
                         for o in m.options]}
            for m in methods.values()]
