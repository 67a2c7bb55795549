import numpy as np
import pytest
import torch
from methods.hand_models import FOUR_IMAGES, MLP_W1, SOFTMAX_B, mlp_2x2, softmax_2x2
from torch import nn

from nnsee.methods import LinearExplanation, MethodError, MLPExplanation, explain, explain_linear, explain_mlp
from nnsee.models import MLP, SoftmaxRegression

X = np.array([[[1.0, 2.0], [3.0, 4.0]]], dtype=np.float32)  # flat [1, 2, 3, 4]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_linear_contributions_golden(dtype):
    e = explain_linear(softmax_2x2(dtype), X)
    # class 0: [1,0,0,−1]⊙x = [1,0,0,−4] (sum −3); class 1: [0,4,0,0] (4); class 2: [−1,0,9,4] (12)
    np.testing.assert_array_equal(e.contributions.reshape(3, 4), [[1, 0, 0, -4], [0, 4, 0, 0], [-1, 0, 9, 4]])
    np.testing.assert_array_equal(e.contribution_sum, [-3, 4, 12])
    np.testing.assert_array_equal(e.bias, SOFTMAX_B)
    np.testing.assert_array_equal(e.logits, [-2.5, 3, 12])
    z = np.array([-2.5, 3, 12])
    np.testing.assert_allclose(e.probabilities, np.exp(z) / np.exp(z).sum(), rtol=1e-6)
    assert e.predicted == 2 and e.contributions.shape == (3, 1, 2, 2)
    assert e.logits.dtype == e.contributions.dtype == np.dtype(torch.empty(0, dtype=dtype).numpy().dtype)


@pytest.mark.parametrize("dtype, tol", [(torch.float32, 1e-5), (torch.float64, 1e-12)])
def test_linear_contributions_sum_to_logit_minus_bias_on_random_rgb(dtype, tol):
    torch.manual_seed(1)
    model = SoftmaxRegression((3, 5, 4), 7).to(dtype)
    x = np.random.default_rng(0).normal(size=(3, 5, 4))
    e = explain_linear(model, x)
    assert e.contributions.shape == (7, 3, 5, 4)
    np.testing.assert_allclose(e.contribution_sum + e.bias, e.logits, rtol=0, atol=tol)
    np.testing.assert_allclose(e.contributions.reshape(7, -1).sum(1), e.contribution_sum, atol=tol)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_mlp_votes_golden(dtype):
    e = explain_mlp(mlp_2x2(dtype), FOUR_IMAGES[2])  # image C: left column lit, x = [1, 0, 1, 0]
    # h = relu([1, 1, 2 − 0.5]) = [1, 1, 1.5]; votes = W_out ⊙ h
    np.testing.assert_array_equal(e.hidden, [1, 1, 1.5])
    np.testing.assert_array_equal(e.pre_activation, [1, 1, 1.5])
    np.testing.assert_array_equal(e.votes, [[2, -1, 0], [-1, 2, 0.75]])
    np.testing.assert_array_equal(e.contribution_sum, [1, 1.75])
    np.testing.assert_allclose(e.out_bias, [0.1, 0], rtol=1e-7)
    np.testing.assert_allclose(e.contribution_sum + e.out_bias, e.logits, rtol=0, atol=1e-6)
    assert e.predicted == 1
    # by vote for class 1: unit 1 (2), unit 2 (0.75), unit 0 (−1)
    assert e.top_units.tolist() == [1, 2, 0]
    np.testing.assert_array_equal(e.pixel_contributions[0].reshape(4), [0, 0, 1, 0])  # x ⊙ W1[1]
    np.testing.assert_array_equal(e.pixel_sums + e.hidden_bias[e.top_units], e.pre_activation[e.top_units])
    by_activation = explain_mlp(mlp_2x2(dtype), FOUR_IMAGES[2], top=2, rank_by="activation")
    assert by_activation.top_units.tolist() == [2, 0]  # |h| = 1.5, then the tie 1 = 1 goes to unit 0
    np.testing.assert_array_equal(by_activation.pixel_contributions.reshape(2, 4), [[1, 0, 1, 0], [1, 0, 0, 0]])
    assert by_activation.pixel_contributions.reshape(2, 4)[0].tolist() == (MLP_W1[2] * [1, 0, 1, 0]).tolist()


@pytest.mark.parametrize("dtype, tol", [(torch.float32, 1e-5), (torch.float64, 1e-12)])
def test_mlp_votes_sum_to_logits_on_random_model(dtype, tol):
    torch.manual_seed(2)
    model = MLP((3, 4, 4), 5, hidden=(30,), activation="tanh").to(dtype)
    x = torch.randn(3, 4, 4, dtype=dtype)
    e = explain_mlp(model, x, top=50)
    assert e.votes.shape == (5, 30) and e.top_units.shape == (30,) and e.pixel_contributions.shape == (30, 3, 4, 4)
    np.testing.assert_allclose(e.contribution_sum + e.out_bias, e.logits, rtol=0, atol=tol)
    np.testing.assert_allclose(e.pixel_sums + e.hidden_bias[e.top_units], e.pre_activation[e.top_units], atol=tol)
    np.testing.assert_allclose(np.tanh(e.pre_activation), e.hidden, atol=tol)


def test_explain_dispatches_and_refuses_others():
    assert isinstance(explain(softmax_2x2(), X), LinearExplanation)
    assert isinstance(explain(mlp_2x2(), X, top=1), MLPExplanation)
    with pytest.raises(MethodError, match="one hidden layer; this model has 2"):
        explain(MLP((1, 2, 2), 2, hidden=(3, 3)), X)
    with pytest.raises(MethodError, match="softmax and mlp"):
        explain(nn.Sequential(nn.Conv2d(1, 1, 1), nn.Flatten(), nn.Linear(4, 2)), X, (1, 2, 2))
    with pytest.raises(MethodError, match="explain_mlp"):
        explain_linear(mlp_2x2(), X)
    with pytest.raises(MethodError, match="use explain_linear"):
        explain_mlp(softmax_2x2(), X)
    with pytest.raises(MethodError, match="one image at a time"):
        explain(softmax_2x2(), np.zeros((2, 1, 2, 2)))


def test_explain_leaves_the_model_as_it_was():
    model = mlp_2x2().train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    explain(model, X)
    assert model.training and all(torch.equal(before[k], v) for k, v in model.state_dict().items())
