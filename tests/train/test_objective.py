"""The objective's gradient, checked by finite differences, and the L2 term's exact form."""

from __future__ import annotations

import torch

from nnsee.models import build_model
from nnsee.train import TrainConfig, l2_penalty, objective
from nnsee.train.optimizers import make_optimizer


def _tiny_problem(dtype: torch.dtype = torch.float64) -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    model = build_model("mlp", (1, 2, 2), 3, hidden=[5]).to(dtype)
    x = torch.randn(7, 1, 2, 2, dtype=dtype)
    y = torch.tensor([0, 1, 2, 0, 1, 2, 0])
    return model, x, y


def test_objective_gradient_matches_finite_differences_with_l2() -> None:
    model, x, y = _tiny_problem()
    l2 = 0.3
    loss = objective(model, x, y, l2)
    grads = torch.autograd.grad(loss, list(model.parameters()))
    eps = 1e-6
    for param, grad in zip(model.parameters(), grads, strict=True):
        flat = param.data.view(-1)
        for i in range(flat.numel()):
            old = flat[i].item()
            flat[i] = old + eps
            plus = objective(model, x, y, l2).item()
            flat[i] = old - eps
            minus = objective(model, x, y, l2).item()
            flat[i] = old
            numeric = (plus - minus) / (2 * eps)
            assert abs(numeric - grad.view(-1)[i].item()) < 1e-6


def test_l2_penalty_is_half_lambda_sum_of_squared_weights_without_biases() -> None:
    model, _, _ = _tiny_problem()
    expected = 0.5 * 0.3 * (model.fc1.weight.pow(2).sum() + model.out.weight.pow(2).sum())
    assert torch.allclose(l2_penalty(model, 0.3), expected)
    assert l2_penalty(model, 0.0).item() == 0.0


def test_sgd_step_follows_the_gradient_of_the_documented_objective() -> None:
    """weight_decay on the weight group must add exactly the gradient of (λ/2)‖W‖², and nothing to biases."""
    model, x, y = _tiny_problem(torch.float32)
    reference = build_model("mlp", (1, 2, 2), 3, hidden=[5])
    reference.load_state_dict(model.state_dict())
    config = TrainConfig(optimizer="sgd", lr=0.1, momentum=0.0, l2=0.5)
    optimizer = make_optimizer(model, config)
    optimizer.zero_grad()
    torch.nn.functional.cross_entropy(model(x), y).backward()
    optimizer.step()
    grads = torch.autograd.grad(objective(reference, x, y, 0.5), list(reference.parameters()))
    for stepped, start, grad in zip(model.parameters(), reference.parameters(), grads, strict=True):
        assert torch.allclose(stepped, start - 0.1 * grad, atol=1e-6)
