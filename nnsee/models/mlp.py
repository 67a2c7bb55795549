"""A multilayer perceptron: ``h1 = act(W1 x + b1)``, ..., ``logits = W_out h_L + b_out``."""

from __future__ import annotations

from collections.abc import Sequence
from math import prod

from torch import nn

from nnsee.errors import TrainingError, not_one_of

ACTIVATIONS: dict[str, type[nn.Module]] = {"tanh": nn.Tanh, "relu": nn.ReLU, "sigmoid": nn.Sigmoid}
MAX_HIDDEN = 65536


class MLP(nn.Sequential):
    """``flatten``, then ``fc1``/``act1``, ``fc2``/``act2``, ..., then ``out``.

    ``fc1.weight[j]`` is hidden unit j's incoming weights (an image of the input's shape);
    ``out.weight[:, j]`` its outgoing weights to every class.
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        n_classes: int,
        hidden: Sequence[int] = (300,),
        activation: str = "tanh",
    ) -> None:
        super().__init__()
        hidden = [int(h) for h in ([hidden] if isinstance(hidden, int) else hidden)]
        if not hidden:
            raise TrainingError("an MLP needs at least one hidden layer; for none, use --model softmax")
        for h in hidden:
            if not 1 <= h <= MAX_HIDDEN:
                raise TrainingError(
                    f"hidden layer size must be between 1 and {MAX_HIDDEN}, got {h}; "
                    "for no hidden layer use --model softmax"
                )
        if activation not in ACTIVATIONS:
            raise TrainingError(not_one_of("activation", activation, ACTIVATIONS))
        self.add_module("flatten", nn.Flatten())
        width = prod(input_shape)
        for i, h in enumerate(hidden, start=1):
            self.add_module(f"fc{i}", nn.Linear(width, h))
            self.add_module(f"act{i}", ACTIVATIONS[activation]())
            width = h
        self.add_module("out", nn.Linear(width, n_classes))
        self.nnsee_spec = {
            "name": "mlp",
            "input_shape": list(input_shape),
            "n_classes": n_classes,
            "hidden": hidden,
            "activation": activation,
        }
