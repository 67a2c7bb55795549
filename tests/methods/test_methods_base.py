import numpy as np
import pytest
import torch
from methods.hand_models import mlp_2x2, softmax_2x2
from torch import nn

from nnsee.errors import NnseeError
from nnsee.methods import MethodError, capture, dense_stages, evaluating, linear_layers, to_batch, zero_units
from nnsee.models import MLP


def conv_net() -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.Flatten(), nn.Linear(2 * 4 * 4, 3))


def test_method_error_is_an_nnsee_value_error():
    assert issubclass(MethodError, NnseeError) and issubclass(MethodError, ValueError)


def test_linear_layers_in_forward_order():
    model = MLP((1, 2, 2), 3, hidden=(5, 4))
    assert [(n, m.in_features, m.out_features) for n, m in linear_layers(model)] == [
        ("fc1", 4, 5), ("fc2", 5, 4), ("out", 4, 3)]


def test_dense_stages_reads_mlp_and_nested_sequential():
    stages = dense_stages(mlp_2x2())
    assert [s.name for s in stages] == ["fc1", "out"]
    assert [type(a).__name__ for a in stages[0].activations] == ["ReLU"] and stages[0].act_name == "act1"
    nested = nn.Sequential(nn.Flatten(), nn.Sequential(nn.Linear(4, 3), nn.Tanh(), nn.Dropout(0.5)), nn.Linear(3, 2))
    stages = dense_stages(nested, (1, 2, 2))
    assert [s.name for s in stages] == ["1.0", "2"] and stages[0].act_name == "1.2"


@pytest.mark.parametrize("model, why", [
    (conv_net(), "'0' (Conv2d)"),
    (nn.Sequential(nn.Flatten(), nn.Linear(4, 2), nn.Softmax(dim=1)), "Softmax"),
    (nn.Sequential(nn.Linear(4, 2)), "no Flatten"),
    (nn.Sequential(nn.Flatten(), nn.Linear(4, 3), nn.ReLU()), "followed by an activation"),
    (nn.Linear(4, 2), "not an nn.Sequential"),
])
def test_dense_stages_refuses_other_models_saying_which_apply(model, why):
    with pytest.raises(MethodError, match="softmax and mlp") as info:
        dense_stages(model, (1, 2, 2), "class templates")
    assert why in str(info.value) and str(info.value).startswith("class templates applies to")


def test_dense_stages_checks_the_input_size():
    with pytest.raises(MethodError, match=r"reads 4 values, but images of shape \(3, 2, 2\) have 12"):
        dense_stages(softmax_2x2(), (3, 2, 2))


def test_capture_releases_hooks_even_on_error():
    model = mlp_2x2()
    x = torch.ones(2, 1, 2, 2)
    with capture(model, "act1") as seen:
        model(x)
    assert seen.calls == 1 and seen.output.shape == (2, 3)
    assert torch.equal(seen.output, torch.relu(model.fc1(x.flatten(1))))
    with pytest.raises(RuntimeError), capture(model, "fc1"):
        model(torch.ones(2, 5))
    assert not model.fc1._forward_hooks and not model.act1._forward_hooks
    with pytest.raises(MethodError, match="no layer 'fc9'.*fc1"), capture(model, "fc9"):
        pass


def test_zero_units_zeroes_only_inside():
    model = mlp_2x2()
    x = torch.ones(1, 1, 2, 2)
    with zero_units(model, "act1", [0, 1]), capture(model, "act1") as seen:
        model(x)
    assert seen.output[0, :2].tolist() == [0, 0]
    assert not model.act1._forward_hooks
    with capture(model, "act1") as seen:
        model(x)
    assert seen.output[0, :2].tolist() == [2, 2]


def test_evaluating_restores_training_flag_and_disables_grad():
    model = mlp_2x2().train()
    with evaluating(model):
        assert not model.training and not torch.is_grad_enabled()
    assert model.training
    with pytest.raises(KeyError), evaluating(model):
        raise KeyError
    assert model.training


def test_to_batch_shapes_and_dtype():
    model = softmax_2x2(torch.float64)
    one = to_batch(np.zeros((1, 2, 2), np.float32), (1, 2, 2), model)
    assert one.shape == (1, 1, 2, 2) and one.dtype == torch.float64
    assert to_batch(np.zeros((5, 1, 2, 2)), (1, 2, 2)).shape == (5, 1, 2, 2)
    with pytest.raises(MethodError, match=r"expected an image of shape \(1, 2, 2\)"):
        to_batch(np.zeros((2, 2)), (1, 2, 2))
