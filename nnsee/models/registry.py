"""Models by name, so a run folder can rebuild the network it was trained with."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from torch import nn

from nnsee.errors import TrainingError, not_one_of
from nnsee.models.cnn import CNN
from nnsee.models.mlp import MLP
from nnsee.models.softmax import SoftmaxRegression

MODELS: dict[str, Callable[..., nn.Module]] = {"softmax": SoftmaxRegression, "mlp": MLP, "cnn": CNN}


def register_model(name: str, factory: Callable[..., nn.Module]) -> None:
    """Make ``factory(input_shape, n_classes, **options)`` buildable as ``name``."""
    MODELS[name] = factory


def build_model(name: str, input_shape: Sequence[int], n_classes: int, **options: Any) -> nn.Module:
    """Build the model called ``name`` for images of ``input_shape`` (C, H, W) and ``n_classes`` classes."""
    if name not in MODELS:
        raise TrainingError(not_one_of("model", name, sorted(MODELS)))
    if n_classes < 2:
        raise TrainingError(
            f"a classifier needs at least 2 classes, the data has {n_classes}; add a folder per class"
        )
    try:
        return MODELS[name](input_shape, n_classes, **options)
    except TypeError as exc:
        raise TrainingError(f"model {name!r} does not take these options {sorted(options)}: {exc}") from exc


def model_spec(model: nn.Module) -> dict[str, Any] | None:
    """The spec that rebuilds ``model`` with :func:`build_model`, or None for a user's own module."""
    spec = getattr(model, "nnsee_spec", None)
    return dict(spec) if spec is not None else None


def build_from_spec(spec: dict[str, Any]) -> nn.Module:
    """Inverse of :func:`model_spec`."""
    spec = dict(spec)
    return build_model(spec.pop("name"), spec.pop("input_shape"), spec.pop("n_classes"), **spec)
