"""Optimizers: mini-batch SGD with momentum, Adam, and full-batch L-BFGS."""

from __future__ import annotations

import torch
from torch import nn

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
    return torch.optim.Adam(groups, lr=config.lr, fused=_fused_ok(model))


def _fused_ok(model: nn.Module) -> bool:
    params = list(model.parameters())
    return bool(params) and all(p.dtype in (torch.float32, torch.float64) for p in params)
