"""FusedAdam: the direct fused step gives bitwise what torch's Adam(fused=True) gives, and keeps step hooks."""

from __future__ import annotations

import pytest
import torch

from nnsee.train.optimizers import FusedAdam


def _trained(cls: type[torch.optim.Adam], l2: float, unlabelled: bool) -> tuple[torch.nn.Module, torch.optim.Adam]:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(20, 7), torch.nn.Tanh(), torch.nn.Linear(7, 3))
    weights = [p for p in model.parameters() if p.ndim > 1]
    others = [p for p in model.parameters() if p.ndim == 1]
    optimizer = cls([{"params": weights, "weight_decay": l2}, {"params": others, "weight_decay": 0.0}], lr=1e-2,
                    fused=True)
    x, y = torch.randn(50, 20), torch.randint(0, 3, (50,))
    for _ in range(5):
        for p in model.parameters():
            p.grad = None
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.unlabelled_step() if unlabelled else optimizer.step()
    return model, optimizer


@pytest.mark.parametrize("unlabelled", [False, True])
@pytest.mark.parametrize("l2", [0.0, 1e-3])
def test_fused_adam_is_bitwise_torch_adam(l2: float, unlabelled: bool) -> None:
    theirs, their_optimizer = _trained(torch.optim.Adam, l2, unlabelled=False)
    mine, my_optimizer = _trained(FusedAdam, l2, unlabelled)
    assert my_optimizer._fused_calls() is not None  # the direct call was taken
    for a, b in zip(theirs.parameters(), mine.parameters(), strict=True):
        assert torch.equal(a, b)
        for key in ("step", "exp_avg", "exp_avg_sq"):
            assert torch.equal(their_optimizer.state[a][key], my_optimizer.state[b][key]), key


def test_unlabelled_step_runs_step_hooks() -> None:
    model = torch.nn.Linear(3, 2)
    optimizer = FusedAdam(model.parameters(), lr=1e-2, fused=True)
    calls: list[str] = []
    optimizer.register_step_pre_hook(lambda *_: calls.append("pre"))
    optimizer.register_step_post_hook(lambda *_: calls.append("post"))
    for _ in range(2):
        model(torch.randn(4, 3)).sum().backward()
        optimizer.unlabelled_step()
    assert calls == ["pre", "post", "pre", "post"]
