"""A multilayer perceptron: ``h1 = act(W1 x + b1)``, ..., ``logits = W_out h_L + b_out``."""

from __future__ import annotations

from collections.abc import Sequence
from math import prod
from typing import Any

from torch import nn

from nnsee.errors import TrainingError, not_one_of
from nnsee.models.options import int_list_option

ACTIVATIONS: dict[str, type[nn.Module]] = {"tanh": nn.Tanh, "relu": nn.ReLU, "sigmoid": nn.Sigmoid}
MAX_HIDDEN = 65536
MAX_HIDDEN_LAYERS = 16


def mlp_options(hidden: Any = (300,), activation: Any = "tanh") -> tuple[list[int], str]:
    """``(hidden, activation)`` checked: 1 to 16 hidden layers of 1 to 65,536 units, a known activation."""
    if isinstance(hidden, Sequence) and not isinstance(hidden, str) and len(hidden) == 0:
        raise TrainingError("an MLP needs at least one hidden layer; for none, use --model softmax")
    sizes = int_list_option("hidden layer size", hidden, 1, MAX_HIDDEN, MAX_HIDDEN_LAYERS,
                            "for no hidden layer use --model softmax")
    if not isinstance(activation, str) or activation not in ACTIVATIONS:
        raise TrainingError(not_one_of("activation", activation, ACTIVATIONS))
    return sizes, activation


def mlp_shapes(input_shape: Sequence[int], n_classes: int, hidden: Any = (300,),
               activation: Any = "tanh") -> dict[str, tuple[int, ...]]:
    """The weights' shapes: ``fc{i}.weight`` (h_i, h_{i-1}) with h_0 = C·H·W, ``fc{i}.bias`` (h_i,), then ``out``."""
    sizes, _ = mlp_options(hidden, activation)
    shapes: dict[str, tuple[int, ...]] = {}
    width = prod(input_shape)
    for i, h in enumerate(sizes, start=1):
        shapes[f"fc{i}.weight"], shapes[f"fc{i}.bias"] = (h, width), (h,)
        width = h
    shapes["out.weight"], shapes["out.bias"] = (n_classes, width), (n_classes,)
    return shapes


class MLP(nn.Sequential):
    """``flatten``, then ``fc1``/``act1``, ``fc2``/``act2``, ..., then ``out``.

    ``fc1.weight[j]`` is hidden unit j's incoming weights (an image of the input's shape);
    ``out.weight[:, j]`` its outgoing weights to every class.
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        n_classes: int,
        hidden: Sequence[int] | int = (300,),
        activation: str = "tanh",
    ) -> None:
        super().__init__()
        sizes, activation = mlp_options(hidden, activation)
        self.add_module("flatten", nn.Flatten())
        width = prod(input_shape)
        for i, h in enumerate(sizes, start=1):
            self.add_module(f"fc{i}", nn.Linear(width, h))
            self.add_module(f"act{i}", ACTIVATIONS[activation]())
            width = h
        self.add_module("out", nn.Linear(width, n_classes))
        self.nnsee_spec = {
            "name": "mlp",
            "input_shape": list(input_shape),
            "n_classes": n_classes,
            "hidden": sizes,
            "activation": activation,
        }
