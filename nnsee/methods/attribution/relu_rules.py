"""One mechanism, two ReLU rules: the backward pass of guided backprop and of the deconvnet.

Both methods are the ordinary gradient of a score w.r.t. the input, except at every ReLU ``y = max(x, 0)``, whose
backward rule (``g`` = gradient arriving at ``y``) becomes:

* ``"deconvnet"`` (Zeiler & Fergus 2014; Captum ``Deconvolution``): ``relu(g)``, the sign of ``x`` is ignored;
* ``"guided"`` (Springenberg et al. 2015; Captum ``GuidedBackprop``): ``relu(g · 1[x > 0])``;
* (``"gradient"``, the unmodified rule ``g · 1[x > 0]``, for comparisons).

Everything else keeps its gradient: max-pool backward *is* Zeiler's switch unpooling and conv backward *is* the
transposed (flipped) filter, so these are exactly the deconvnet and guided backprop.

How (with :func:`nnsee.models.hooks.forward_hooks`): every ``nn.ReLU`` module gets a forward hook that wraps its
output ``y`` in an identity autograd function whose backward hands the rule's result straight to the ReLU's input
``x``, so the ReLU's own backward is skipped (for an in-place ReLU, a pre-hook keeps ``x`` and hands the module a
clone, as Captum does). Guided: ``relu(g · 1[y > 0])``, the second step in place; deconvnet: ``relu(g)``. So guided
backprop costs one in-place elementwise pass per ReLU over the plain gradient and the deconvnet none. Like Captum 0.9's
tensor hooks (measured equal) this stays right when one ReLU module is called several times in a forward pass, as
torchvision's ResNet blocks call their one ``relu`` twice.

Functional ReLUs (``F.relu``, ``torch.relu``, ``Tensor.relu``, in-place variants) cannot be hooked; Captum silently
leaves them with the ordinary gradient. Here a ``TorchFunctionMode`` watches the model's forward pass and raises
:class:`~nnsee.methods.base.MethodError` at the first ReLU called outside an ``nn.ReLU`` module. A ReLU written some
other way (``clamp(min=0)``, ``x * (x > 0)``) cannot be recognized by anyone and keeps the ordinary gradient.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn
from torch.overrides import TorchFunctionMode

from nnsee.errors import not_one_of
from nnsee.methods.attribution.target import as_input, gradient
from nnsee.methods.base import MethodError
from nnsee.models.hooks import forward_hooks

RULES = ("deconvnet", "guided", "gradient")
_FUNCTIONAL_RELUS = {F.relu, F.relu_, torch.relu, torch.relu_, torch.Tensor.relu, torch.Tensor.relu_}


class _GuidedReLU(torch.autograd.Function):
    """Forward: the ReLU's output ``y`` as it is; backward: ``relu(g · 1[y > 0])`` to the ReLU's input ``x``, in
    place of the ReLU's own backward (the same two operations in the same order as the ReLU's backward followed by
    Captum's hook, but the second one in place on the first one's fresh result)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(y)
        return y.view_as(y)

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        (y,) = ctx.saved_tensors
        return torch.ops.aten.threshold_backward(g, y, 0).clamp_(min=0), None


class _DeconvReLU(torch.autograd.Function):
    """Forward: the ReLU's output ``y`` as it is; backward: ``relu(g)`` straight to the ReLU's input ``x``,
    bypassing the ReLU's own backward (the deconvnet ignores the sign of ``x``)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return y.view_as(y)

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        return g.clamp(min=0), None


class _WatchFunctionalReLU(TorchFunctionMode):
    """Raise at the first functional ReLU called outside a hooked ``nn.ReLU`` module."""

    def __init__(self, state: dict[str, int]) -> None:
        super().__init__()
        self.state = state

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN204
        if func in _FUNCTIONAL_RELUS and self.state["inside"] == 0:
            raise MethodError(
                "this model applies a functional ReLU (F.relu / torch.relu / Tensor.relu) in its forward pass; its "
                "backward rule cannot be changed, so guided backprop and the deconvnet would silently be wrong "
                "there (Captum ignores such ReLUs without a word). Use nn.ReLU modules instead of functional calls"
            )
        return func(*args, **(kwargs or {}))


def relu_modules(model: nn.Module) -> list[tuple[str, nn.ReLU]]:
    """The model's ``nn.ReLU`` modules (in-place ones included) with their dotted names."""
    return [(name, m) for name, m in model.named_modules() if isinstance(m, nn.ReLU)]


@contextmanager
def relu_rule(model: nn.Module, rule: str) -> Iterator[nn.Module]:
    """``with relu_rule(model, "guided"): ...`` every ``nn.ReLU`` backward follows ``rule`` inside the block.

    Raises MethodError for an unknown rule, for a model without ``nn.ReLU`` modules, and (during the forward pass)
    at a functional ReLU. The hooks are always removed, also when the block raises.
    """
    if rule not in RULES:
        raise MethodError(not_one_of("rule", rule, RULES))
    relus = relu_modules(model)
    if not relus:
        from nnsee.models.capabilities import capabilities

        raise MethodError(f"guided backprop and the deconvnet change the backward rule of nn.ReLU modules: "
                          f"{capabilities(model).relu_rule} (functional F.relu cannot be hooked)")
    state = {"inside": 0}
    stash: dict[int, list[torch.Tensor]] = {}

    def pre_hook(module: nn.Module, inputs: tuple[Any, ...]) -> tuple[Any, ...] | None:
        if len(inputs) != 1 or not isinstance(inputs[0], torch.Tensor):
            raise MethodError(f"a ReLU module must take one tensor, got {len(inputs)} inputs")
        state["inside"] += 1
        if rule != "gradient" and getattr(module, "inplace", False):
            # an in-place ReLU would turn x itself into its output: keep x, hand the module a clone (as Captum does)
            stash.setdefault(id(module), []).append(inputs[0])
            return (inputs[0].clone(),)
        return None

    def hook(module: nn.Module, inputs: tuple[Any, ...], output: torch.Tensor) -> torch.Tensor | None:
        state["inside"] -= 1
        if rule == "gradient":
            return None
        x = stash[id(module)].pop() if getattr(module, "inplace", False) else inputs[0]
        return (_GuidedReLU if rule == "guided" else _DeconvReLU).apply(x, output)

    watch = _WatchFunctionalReLU(state)  # active during the model's forward pass only, not the backward

    def enter(_module: nn.Module, _inputs: tuple[Any, ...]) -> None:
        watch.__enter__()

    def leave(_module: nn.Module, _inputs: tuple[Any, ...], _output: Any) -> None:
        watch.__exit__(None, None, None)

    modules = [m for _, m in relus]
    with (forward_hooks([model], enter, pre=True), forward_hooks([model], leave, always_call=True),
          forward_hooks(modules, pre_hook, pre=True), forward_hooks(modules, hook)):
        yield model


def rule_gradient(model: nn.Module, x: np.ndarray | torch.Tensor, target: int | Sequence[int] | np.ndarray,
                  output: str, rule: str) -> np.ndarray:
    """``∂ f_target(x) / ∂x`` with every ReLU's backward replaced by ``rule``, as a numpy array (N, C, H, W)."""
    t = as_input(x, model)
    with relu_rule(model, rule):
        grad, _ = gradient(model, t, target, output)
    return grad.detach().cpu().numpy()
