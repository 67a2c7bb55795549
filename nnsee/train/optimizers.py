"""Optimizers: mini-batch SGD with momentum, Adam, and full-batch L-BFGS."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.autograd import profiler
from torch.optim import optimizer as torch_optimizer

from nnsee.train.config import TrainConfig
from nnsee.train.objective import penalized_parameters


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """The optimizer named in ``config``.

    SGD and Adam get the L2 penalty as ``weight_decay=λ`` on the weight group only, which adds exactly the
    penalty's gradient ``λ W`` (not AdamW's decoupled decay). L-BFGS sees the penalty in its closure instead.
    """
    weights, others = penalized_parameters(model)
    if config.optimizer == "lbfgs":
        return torch.optim.LBFGS(
            weights + others,
            lr=config.lr,
            max_iter=config.lbfgs_iterations,
            history_size=20,
            line_search_fn="strong_wolfe",
        )
    if config.l2 == 0:  # one group: one fused kernel call per step instead of two
        groups = [{"params": weights + others, "weight_decay": 0.0}]
    else:
        groups = [{"params": weights, "weight_decay": config.l2}, {"params": others, "weight_decay": 0.0}]
    groups = [g for g in groups if g["params"]]
    if config.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum)
    # The fused kernel updates all parameters in one pass with no temporaries: the step costs as much as a
    # backward pass otherwise.
    return FusedAdam(groups, lr=config.lr, fused=_fused_ok(model))


class FusedAdam(torch.optim.Adam):
    """``torch.optim.Adam`` whose step, once its state exists, calls the fused kernel directly.

    ``Adam.step`` spends about as long in Python (grouping tensors by device and dtype, checks for options we
    never set) as a small model's update takes; here each group is one ``_foreach_add_`` on the step counters and
    one ``_fused_adam_`` call, the same two calls ``Adam`` makes, with the same arguments: the weights come out
    bitwise the same. Anything else (the first step, a closure, amsgrad, maximize, tensor learning rates, a
    grad scaler, parameters of mixed devices or dtypes) goes through ``Adam.step`` unchanged. Step hooks run
    either way (torch wraps ``step`` in them); ``state_dict`` is Adam's.
    """

    def step(self, closure: Any = None) -> Any:
        calls = self._fused_calls() if closure is None else None
        if calls is None:
            # Adam.step itself, not the copy torch wraps in hooks once any Adam exists: ours is wrapped already.
            adam_step = torch.optim.Adam.step
            if getattr(adam_step, "hooked", False):
                adam_step = adam_step.__wrapped__
            return adam_step(self, closure)
        self._fused_step(calls)
        return None

    def unlabelled_step(self) -> None:
        """``step()`` for a training loop, without the wrapper torch puts around every optimizer's ``step``.

        That wrapper opens a profiler label and looks for step hooks, at each call: tens of microseconds, as much
        as a small model's update. It only matters when hooks are registered or the profiler runs; then (and
        whenever the direct call does not apply) this is ``step()`` itself.
        """
        calls = None if _step_observed(self) else self._fused_calls()
        if calls is None:
            self.step()
        else:
            self._fused_step(calls)

    def _fused_step(self, calls: list[tuple]) -> None:
        with torch.no_grad():
            for group, params, grads, exp_avgs, exp_avg_sqs, steps in calls:
                beta1, beta2 = group["betas"]
                torch._foreach_add_(steps, 1)
                torch._fused_adam_(
                    params, grads, exp_avgs, exp_avg_sqs, [], steps,
                    lr=group["lr"], beta1=beta1, beta2=beta2, weight_decay=group["weight_decay"],
                    eps=group["eps"], amsgrad=False, maximize=False,
                )

    def _fused_calls(self) -> list[tuple] | None:
        """Per group, the tensor lists for the direct call; None where ``Adam.step`` must do the step."""
        if not _HAS_FUSED_ADAM or getattr(self, "grad_scale", None) is not None \
                or getattr(self, "found_inf", None) is not None:
            return None
        calls = []
        for group in self.param_groups:
            if not group["fused"] or any(group[k] for k in _PLAIN_OPTIONS) or isinstance(group["lr"], torch.Tensor) \
                    or any(isinstance(b, torch.Tensor) for b in group["betas"]):
                return None
            params, grads, exp_avgs, exp_avg_sqs, steps = [], [], [], [], []
            for p in group["params"]:
                grad = p.grad
                if grad is None:
                    continue
                state = self.state.get(p)
                if not state or grad.is_sparse or p.is_complex():
                    return None
                params.append(p)
                grads.append(grad)
                exp_avgs.append(state["exp_avg"])
                exp_avg_sqs.append(state["exp_avg_sq"])
                steps.append(state["step"])
            if not params:
                continue
            first = params[0]
            if any(t.device != first.device or t.dtype != first.dtype for t in params) \
                    or any(s.device != first.device for s in steps):
                return None
            calls.append((group, params, grads, exp_avgs, exp_avg_sqs, steps))
        return calls


def _step_observed(optimizer: torch.optim.Optimizer) -> bool:
    """Whether anything watches ``optimizer.step``: step hooks (its own or global ones), or the profiler."""
    return bool(
        optimizer._optimizer_step_pre_hooks or optimizer._optimizer_step_post_hooks
        or getattr(torch_optimizer, "_global_optimizer_pre_hooks", True)
        or getattr(torch_optimizer, "_global_optimizer_post_hooks", True)
        or getattr(profiler, "_is_profiler_enabled", True)
    )


_HAS_FUSED_ADAM = hasattr(torch, "_fused_adam_")
#: Adam options that change the update (any of them set: Adam.step does the step)
_PLAIN_OPTIONS = ("amsgrad", "maximize", "capturable", "differentiable", "decoupled_weight_decay", "foreach")


def _fused_ok(model: nn.Module) -> bool:
    params = list(model.parameters())
    return bool(params) and all(p.dtype in (torch.float32, torch.float64) for p in params)
