"""A copy of any ``nn.Module`` with its own parameters and buffers, for views that change weights (the randomization
check). ``copy.deepcopy`` is tried first; a module that deepcopy cannot copy — one unflattened from a ``torch.export``
archive, whose graph nodes hold tensors of symbolic size — is copied module by module instead: each module shallow-
copied with its own parameter, buffer, child and hook tables and cloned tensors, its graph and code shared (they are
read, never changed, and the generated ``forward`` reads weights through ``self``)."""

from __future__ import annotations

import copy

import torch
from torch import nn


def copy_model(model: nn.Module) -> nn.Module:
    """A copy of ``model`` whose parameters and buffers are new tensors (tied ones stay tied)."""
    try:
        return copy.deepcopy(model)
    except RuntimeError:  # e.g. "Cannot call numel() on tensor with symbolic sizes/strides"
        return _structural_copy(model, {})


def _structural_copy(module: nn.Module, memo: dict[int, object]) -> nn.Module:
    if id(module) in memo:
        return memo[id(module)]  # type: ignore[return-value]
    new = copy.copy(module)
    memo[id(module)] = new
    for name, value in vars(module).items():  # hook and buffer-name tables: the copy's own
        if name.startswith("_") and isinstance(value, (dict, set)) and name not in ("_parameters", "_buffers",
                                                                                     "_modules"):
            new.__dict__[name] = copy.copy(value)
    new._parameters = {k: None if p is None else _tensor(p, memo) for k, p in module._parameters.items()}
    new._buffers = {k: None if b is None else _tensor(b, memo) for k, b in module._buffers.items()}
    new._modules = {k: None if c is None else _structural_copy(c, memo) for k, c in module._modules.items()}
    return new


def _tensor(t: torch.Tensor, memo: dict[int, object]) -> torch.Tensor:
    if id(t) not in memo:
        data = t.detach().clone()
        memo[id(t)] = nn.Parameter(data, requires_grad=t.requires_grad) if isinstance(t, nn.Parameter) else data
    return memo[id(t)]  # type: ignore[return-value]
