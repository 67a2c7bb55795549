"""The one place that bounds models (issue 11, item 3): options of exact types and ranges, and a weight count from the
spec's arithmetic checked before anything is built.

The shapes ``check_model`` computes are compared with those of the model PyTorch builds (an independent reference);
the refusals run in a child process under a 1 GiB address-space limit that reports its own peak (VmHWM), so a model
built before it is checked fails the test instead of exhausting the machine.
"""

from __future__ import annotations

import math

import pytest
from limited_child import call, run_limited

from nnsee.errors import TrainingError
from nnsee.models.registry import MAX_PARAMETERS, build_model, check_model, register_model


@pytest.mark.parametrize(("name", "shape", "options"), [
    ("softmax", (1, 28, 28), {}),
    ("softmax", (3, 7, 5), {}),
    ("mlp", (1, 8, 8), {"hidden": [7, 5, 3], "activation": "relu"}),
    ("mlp", (3, 6, 9), {"hidden": 4}),
    ("cnn", (1, 28, 28), {}),
    ("cnn", (3, 13, 9), {"channels": [3, 4], "kernel": 3, "hidden": 6}),
    ("cnn", (1, 31, 17), {"channels": 2, "kernel": 17}),
])
def test_the_arithmetic_shapes_are_the_shapes_pytorch_builds(name: str, shape: tuple, options: dict) -> None:
    model = build_model(name, shape, 4, **options)
    assert check_model(name, shape, 4, **options) == {k: tuple(v.shape) for k, v in model.state_dict().items()}


def test_a_registered_model_is_counted_on_the_meta_device_and_capped() -> None:
    from torch import nn

    register_model("wide", lambda shape, k, width=8: nn.Sequential(nn.Flatten(), nn.Linear(shape[1] * shape[2], width),
                                                                 nn.Linear(width, k)))
    try:
        assert check_model("wide", (1, 4, 4), 3, width=5) == {"1.weight": (5, 16), "1.bias": (5,),
                                                              "2.weight": (3, 5), "2.bias": (3,)}
        with pytest.raises(TrainingError, match="more than the 50,000,000"):
            check_model("wide", (1, 1000, 1000), 3, width=1000)  # 1e9 weights, never allocated (meta device)
    finally:
        from nnsee.models.registry import MODELS

        MODELS.pop("wide")


# (name, input_shape, n_classes, options, what the one line says)
REFUSED = [
    ("mlp", [1, 28, 28], 10, {"hidden": [2_000_000]}, "hidden layer size must be an integer from 1 to 65,536"),
    ("mlp", [1, 28, 28], 10, {"hidden": [65536, 65536, 65536]},
     f"would have {784 * 65536 + 65536 + 2 * (65536 ** 2 + 65536) + 10 * 65536 + 10:,} weights"),
    ("mlp", [3, 1024, 1024], 10, {"hidden": [300]}, "more than the 50,000,000"),
    ("mlp", [1, 28, 28], 10, {"hidden": "abc"}, "an integer or a list of 1 to 16 integers, got 'abc'"),
    ("mlp", [1, 28, 28], 10, {"hidden": [3.5]}, "got 3.5"),
    ("mlp", [1, 28, 28], 10, {"hidden": [True]}, "got True"),
    ("mlp", [1, 28, 28], 10, {"hidden": []}, "at least one hidden layer"),
    ("mlp", [1, 28, 28], 10, {"activation": ["tanh"]}, "activation must be one of"),
    ("cnn", [1, 28, 28], 10, {"kernel": 10001}, "kernel size must be an integer from 1 to 28, got 10001"),
    ("cnn", [1, 28, 28], 10, {"kernel": 99999}, "odd size up to the images' 28 px"),
    ("cnn", [1, 28, 28], 10, {"kernel": 4}, "odd"),
    ("cnn", [1, 28, 28], 10, {"channels": [1025]}, "from 1 to 1,024"),
    ("cnn", [3, 1024, 1024], 10, {"channels": [1024, 1024], "hidden": 65536}, "more than the 50,000,000"),
    ("softmax", [1, 28, 28], 10 ** 12, {}, "number of classes must be an integer from 2 to 2,000"),
    ("softmax", [1, 28, 28], "3", {}, "got '3'"),
    ("softmax", [1, 10 ** 6, 10 ** 6], 10, {}, "an image side (px) must be an integer from 1 to 4,096"),
    ("softmax", [[[1]]], 10, {}, "three integers (channels, height, width)"),
    ("softmax", [2, 28, 28], 10, {}, "1 or 3 input channels"),
    ("softmax", [1, 28, 28], 10, {"kernel": 3}, "does not take the option 'kernel'; it takes no options"),
    ("no-such", [1, 28, 28], 10, {}, "model must be one of"),
]

def test_hostile_model_options_are_refused_in_one_line_before_anything_is_allocated() -> None:
    results, peak_kb = run_limited([call("nnsee.models:build_model", name, shape, k, **options)
                                     for name, shape, k, options, _ in REFUSED], timeout=120)
    for (name, _, _, options, says), (seconds, outcome) in zip(REFUSED, results, strict=True):
        assert outcome.startswith("REFUSED ") and says in outcome, (name, options, outcome)
        assert "\n" not in outcome and seconds < 1, (name, options, seconds)
    assert peak_kb < 600_000, peak_kb


def test_the_budget_is_the_weight_count() -> None:
    """An MLP of h hidden units on 784 inputs and 2 classes has 784h + h + 2h + 2 = 787h + 2 weights and biases."""
    h = (MAX_PARAMETERS - 2) // 787
    assert sum(map(math.prod, check_model("mlp", (1, 28, 28), 2, hidden=[h]).values())) == 787 * h + 2
    with pytest.raises(TrainingError, match=f"would have {787 * (h + 1) + 2:,} weights"):
        check_model("mlp", (1, 28, 28), 2, hidden=[h + 1])
