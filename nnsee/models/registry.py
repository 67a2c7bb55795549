"""Models by name, so a run folder can rebuild the network it was trained with, and the one place that bounds them.

Every model nnsee builds, for ``train`` or from a run.json, passes :func:`check_model` first: the name is known,
``input_shape`` is (C, H, W) with C in {1, 3} and sides of 1 to :data:`MAX_SIDE` px, ``n_classes`` is 2 to
:data:`MAX_CLASSES`, the options have the exact types and ranges each model states, and the weights' shapes, computed
from the spec by arithmetic (nothing allocated), hold at most :data:`MAX_PARAMETERS` values. The model is then built
from the checked values only.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from math import prod
from typing import Any

from torch import nn

from nnsee.data.npz import MAX_CLASSES
from nnsee.errors import TrainingError, not_one_of
from nnsee.models.cnn import CNN, cnn_shapes
from nnsee.models.mlp import MLP, mlp_shapes
from nnsee.models.options import int_option, is_int
from nnsee.models.softmax import SoftmaxRegression, softmax_shapes

Shapes = dict[str, tuple[int, ...]]

#: Most weights (and biases) a model may have: 200 MB as float32, about 0.8 GB to train with Adam.
MAX_PARAMETERS = 50_000_000
#: Largest image side a model is built for (``--size`` goes to 1,024).
MAX_SIDE = 4096

MODELS: dict[str, Callable[..., nn.Module]] = {"softmax": SoftmaxRegression, "mlp": MLP, "cnn": CNN}
#: ``shapes(input_shape, n_classes, **options)``: each model's weight shapes, by arithmetic, its options checked.
SHAPES: dict[str, Callable[..., Shapes]] = {"softmax": softmax_shapes, "mlp": mlp_shapes, "cnn": cnn_shapes}


def register_model(name: str, factory: Callable[..., nn.Module],
                   shapes: Callable[..., Mapping[str, Sequence[int]]] | None = None) -> None:
    """Make ``factory(input_shape, n_classes, **options)`` buildable as ``name``; ``shapes`` (same arguments) gives
    its weights' shapes without building it (default: the factory is run on PyTorch's ``meta`` device, which
    allocates nothing)."""
    MODELS[name] = factory
    SHAPES.pop(name, None)
    if shapes is not None:
        SHAPES[name] = shapes  # type: ignore[assignment]


def _meta_shapes(factory: Callable[..., nn.Module]) -> Callable[..., Shapes]:
    def shapes(input_shape: Sequence[int], n_classes: int, **options: Any) -> Shapes:
        import torch

        with torch.device("meta"):
            model = factory(input_shape, n_classes, **options)
        return {k: tuple(v.shape) for k, v in model.state_dict().items()}

    return shapes


def check_input_shape(input_shape: Any) -> tuple[int, int, int]:
    """``input_shape`` as (C, H, W): three integers, C 1 or 3, H and W 1 to :data:`MAX_SIDE`."""
    if (not isinstance(input_shape, Sequence) or isinstance(input_shape, str) or len(input_shape) != 3
            or not all(is_int(d) for d in input_shape)):
        shown = repr(input_shape) if len(repr(input_shape)) <= 60 else repr(input_shape)[:60] + "..."
        raise TrainingError(f"the input shape must be three integers (channels, height, width), got {shown}")
    c = input_shape[0]
    if c not in (1, 3):
        raise TrainingError(f"the model takes 1 or 3 input channels (grey or RGB images), got {c}")
    h, w = (int_option("an image side (px)", d, 1, MAX_SIDE, "use a smaller --size") for d in input_shape[1:])
    return c, h, w


def check_model(name: Any, input_shape: Any, n_classes: Any, **options: Any) -> Shapes:
    """The weight shapes of model ``name`` for ``input_shape`` and ``n_classes`` with ``options``, every value
    checked first (module docstring); a one-line :class:`TrainingError` says which is wrong and what to do."""
    if not isinstance(name, str) or name not in MODELS:
        raise TrainingError(not_one_of("model", name, sorted(MODELS)))
    shape = check_input_shape(input_shape)
    if is_int(n_classes) and n_classes < 2:
        raise TrainingError(f"a classifier needs at least 2 classes, the data has {n_classes}; add a folder per class")
    n_classes = int_option("the number of classes", n_classes, 2, MAX_CLASSES)
    planner = SHAPES.get(name)
    if planner is None:
        planner = _meta_shapes(MODELS[name])
    else:
        params = inspect.signature(planner).parameters
        takes = [p for p in list(params)[2:] if params[p].kind is not inspect.Parameter.VAR_KEYWORD]
        unknown = sorted(set(options) - set(takes))
        if unknown and not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
            raise TrainingError(f"model {name!r} does not take the option {', '.join(map(repr, unknown))}; it takes "
                                f"{', '.join(takes) or 'no options'}")
    try:
        shapes = {k: tuple(v) for k, v in planner(shape, n_classes, **options).items()}
    except TypeError as exc:
        raise TrainingError(f"model {name!r} does not take these options {sorted(options)}: {exc}") from exc
    count = sum(prod(s) for s in shapes.values())
    if count > MAX_PARAMETERS:
        largest = max(shapes, key=lambda k: prod(shapes[k]))
        raise TrainingError(
            f"this {name} would have {count:,} weights ({largest} alone {'x'.join(map(str, shapes[largest]))}), "
            f"more than the {MAX_PARAMETERS:,} nnsee builds: use fewer or smaller hidden layers or channels, or "
            "smaller images (--size)"
        )
    return shapes


def build_model(name: str, input_shape: Sequence[int], n_classes: int, **options: Any) -> nn.Module:
    """Build the model called ``name`` for images of ``input_shape`` (C, H, W) and ``n_classes`` classes, once
    :func:`check_model` has passed."""
    check_model(name, input_shape, n_classes, **options)
    shape = [int(d) for d in input_shape]
    try:
        return MODELS[name](shape, int(n_classes), **options)
    except TypeError as exc:
        raise TrainingError(f"model {name!r} does not take these options {sorted(options)}: {exc}") from exc


def model_spec(model: nn.Module) -> dict[str, Any] | None:
    """The spec that rebuilds ``model`` with :func:`build_model`, or None for a user's own module."""
    spec = getattr(model, "nnsee_spec", None)
    return dict(spec) if spec is not None else None


def _split_spec(spec: Any) -> tuple[Any, Any, Any, dict[str, Any]]:
    if not isinstance(spec, Mapping):
        raise TrainingError(f"a model spec is a JSON object with 'name', 'input_shape' and 'n_classes', got "
                            f"{type(spec).__name__}")
    missing = [k for k in ("name", "input_shape", "n_classes") if k not in spec]
    if missing:
        raise TrainingError(f"the model spec has no {', '.join(repr(k) for k in missing)}")
    options = {str(k): v for k, v in spec.items() if k not in ("name", "input_shape", "n_classes")}
    return spec["name"], spec["input_shape"], spec["n_classes"], options


def spec_shapes(spec: Any) -> Shapes:
    """The weight shapes the model ``spec`` (as :func:`model_spec` writes it) would have, checked, nothing built."""
    name, input_shape, n_classes, options = _split_spec(spec)
    return check_model(name, input_shape, n_classes, **options)


def build_from_spec(spec: Any) -> nn.Module:
    """Inverse of :func:`model_spec` (the spec checked by :func:`check_model` first)."""
    name, input_shape, n_classes, options = _split_spec(spec)
    return build_model(name, input_shape, n_classes, **options)
