"""The views compute on the model's device, and only their results come back to the CPU (checked without a GPU).

A model on PyTorch's ``meta`` device holds no data, and any operation mixing a meta tensor with a CPU tensor raises
"Tensor on device cpu is not on the expected device meta". So a view run on a meta model must get all the way to
copying its result out ("Cannot copy out of meta tensor") or to a data-dependent step (``.item()``, ``nonzero``)
without that error: a tensor made on the CPU (``torch.zeros(n)`` without ``device=``) inside the computation fails
here as it would on a GPU.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from torch import nn

from nnsee.methods import class_templates, effective_templates
from nnsee.methods.activation_max import activation_maximization
from nnsee.methods.class_units import class_units
from nnsee.methods.contributions import explain
from nnsee.methods.hidden_units import (
    ablation_effect,
    hidden_activations,
    hidden_biases,
    incoming_weights,
    outgoing_weights,
    top_images_per_unit,
)
from nnsee.models import build_model

SHAPE = (1, 6, 6)
#: What a meta model may stop at: copying a result out to the CPU, or a step that needs the values.
NO_DATA = ("Cannot copy out of meta tensor", "cannot be called on meta tensors", "torch.nonzero()")


def _models() -> dict[str, nn.Module]:
    no_bias = nn.Sequential(nn.Flatten(), nn.Linear(36, 5, bias=False), nn.ReLU(), nn.Linear(5, 3, bias=False))
    return {"mlp": build_model("mlp", SHAPE, 3, hidden=[5]), "softmax": build_model("softmax", SHAPE, 3),
            "no bias": no_bias, "cnn": build_model("cnn", SHAPE, 3, channels=[2, 3], kernel=3)}


X = np.random.default_rng(0).random((4, *SHAPE), dtype=np.float32)
Y = np.array([0, 1, 2, 0])
VIEWS: dict[str, Callable[[dict[str, nn.Module]], object]] = {
    "effective templates": lambda m: effective_templates(m["mlp"], SHAPE),
    "effective templates without biases": lambda m: effective_templates(m["no bias"], SHAPE),
    "class templates": lambda m: class_templates(m["softmax"], SHAPE),
    "incoming weights": lambda m: incoming_weights(m["mlp"], SHAPE),
    "hidden biases": lambda m: hidden_biases(m["mlp"]),
    "outgoing weights": lambda m: outgoing_weights(m["mlp"]),
    "hidden activations": lambda m: hidden_activations(m["mlp"], X),
    "top images per unit": lambda m: top_images_per_unit(m["mlp"], X, k=2),
    "ablation effect": lambda m: ablation_effect(m["mlp"], X, Y),
    "ablation effect without biases": lambda m: ablation_effect(m["no bias"], X, Y, layer="1"),
    "contributions (softmax)": lambda m: explain(m["softmax"], X[0]),
    "contributions (mlp)": lambda m: explain(m["mlp"], X[0]),
    "contributions without biases": lambda m: explain(m["no bias"], X[0], input_shape=SHAPE),
    "class units": lambda m: class_units(m["mlp"], 1),
    "activation maximization": lambda m: activation_maximization(m["cnn"], 1, SHAPE, steps=2),
}


@pytest.mark.parametrize("view", list(VIEWS))
def test_a_view_of_a_model_elsewhere_never_mixes_in_a_cpu_tensor(view: str) -> None:
    models = {name: model.to("meta") for name, model in _models().items()}
    with pytest.raises((NotImplementedError, RuntimeError)) as caught:
        VIEWS[view](models)
    assert any(reason in str(caught.value) for reason in NO_DATA), str(caught.value)
