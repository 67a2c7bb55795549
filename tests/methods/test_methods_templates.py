import numpy as np
import pytest
import torch
from methods.hand_models import MLP_W1, MLP_W2, SOFTMAX_W, mlp_2x2, softmax_2x2
from torch import nn

from nnsee.methods import MethodError, class_templates, effective_linear, effective_templates
from nnsee.models import MLP, SoftmaxRegression


def test_class_templates_are_w_reshaped():
    t = class_templates(softmax_2x2())
    assert t.shape == (3, 1, 2, 2) and t.dtype == np.float32
    # class 2's template: top row (−1, 0), bottom row (3, 1)
    assert t[2, 0].tolist() == [[-1, 0], [3, 1]]
    np.testing.assert_array_equal(t.reshape(3, 4), SOFTMAX_W)


def test_class_templates_keep_rgb_layout():
    model = SoftmaxRegression((3, 2, 2), 2)
    with torch.no_grad():
        model.out.weight.copy_(torch.arange(24, dtype=torch.float32).reshape(2, 12))
    t = class_templates(model)
    assert t.shape == (2, 3, 2, 2)
    # flat index c*4 + h*2 + w is what Flatten gives pixel (c, h, w)
    assert t[1, 2, 1, 0] == 12 + 2 * 4 + 1 * 2 + 0


def test_class_templates_refuse_hidden_layers_and_point_at_effective():
    with pytest.raises(MethodError, match="effective_templates"):
        class_templates(mlp_2x2())
    with pytest.raises(MethodError, match="softmax and mlp"):
        class_templates(nn.Sequential(nn.Conv2d(1, 1, 1), nn.Flatten(), nn.Linear(4, 2)), (1, 2, 2))


def test_class_templates_need_an_input_shape_for_custom_models():
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
    with pytest.raises(MethodError, match=r"pass input_shape=\(C, H, W\)"):
        class_templates(model)
    assert class_templates(model, (1, 2, 2)).shape == (2, 1, 2, 2)


def test_effective_template_of_one_hidden_layer_is_the_product():
    t = effective_templates(mlp_2x2())
    # class 0: 2·[1,1,0,0] − 1·[0,0,1,1] = [2,2,−1,−1]; class 1: −[1,1,0,0] + 2·[0,0,1,1] + 0.5·[1,−1,1,−1]
    np.testing.assert_allclose(t.reshape(2, 4), [[2, 2, -1, -1], [-0.5, -1.5, 2.5, 1.5]])
    np.testing.assert_allclose(t.reshape(2, 4), MLP_W2 @ MLP_W1)  # W0 @ W1[:, k] in x @ W layout


def test_effective_template_of_deeper_mlp_and_softmax():
    torch.manual_seed(0)
    model = MLP((3, 2, 2), 4, hidden=(5, 6)).double()
    w, b = effective_linear(model)
    w1, w2, w3 = model.fc1.weight, model.fc2.weight, model.out.weight
    np.testing.assert_allclose(w, (w3 @ w2 @ w1).detach().numpy(), rtol=1e-12)
    expect_b = w3 @ (w2 @ model.fc1.bias + model.fc2.bias) + model.out.bias
    np.testing.assert_allclose(b, expect_b.detach().numpy(), rtol=1e-12)
    # With identity activations the linearisation is the model itself.
    model.act1, model.act2 = nn.Identity(), nn.Identity()
    x = torch.randn(7, 3, 2, 2, dtype=torch.float64)
    np.testing.assert_allclose(x.flatten(1).numpy() @ w.T + b, model(x).detach().numpy(), rtol=1e-10)
    assert effective_templates(model).shape == (4, 3, 2, 2)
    np.testing.assert_array_equal(effective_templates(softmax_2x2()), class_templates(softmax_2x2()))
