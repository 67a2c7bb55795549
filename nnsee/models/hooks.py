"""Forward hooks and evaluation mode: the one place where nnsee registers hooks on a model or saves and restores its
train/eval mode.

Every helper is a context manager that always releases: on leaving the block, also when the block or the model's
forward pass raises, every hook it registered is removed and every module's ``training`` flag is what it was.

* :func:`eval_mode` — eval mode with ``torch.no_grad()`` (``grad=False``) or with gradients on (``grad=True``);
* :func:`forward_hooks` — one hook on many modules (forward or forward-pre), the registration every other helper uses;
* :func:`on_output` — a function of one layer's output at each call; what it returns (if not None) flows on instead;
* :func:`capture` — keep one layer's latest output (optionally passing a clone on, so in-place ops after the layer
  cannot change what was kept);
* :func:`replace_output` / :func:`zero_units` — hand the rest of the model another output;
* :func:`layer_reader` — a layer's output at its **last** call in the forward pass, the pass stopped right after it
  (by raising :class:`StopForward`, the one stop exception);
* :func:`watch_leaves` — a function of every leaf module's call, in call order.

Layers are named as in ``model.named_modules()`` (dotted); :func:`get_module` refuses other names with a
:class:`~nnsee.errors.MethodError` listing the model's layers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from nnsee.errors import MethodError

ForwardHook = Callable[[nn.Module, tuple[Any, ...], Any], Any]  # (module, inputs, output) -> new output or None
PreHook = Callable[[nn.Module, tuple[Any, ...]], Any]  # (module, inputs) -> new inputs or None


class StopForward(Exception):
    """Raised by a hook to end a forward pass early; :func:`layer_reader` raises and catches it."""


def get_module(model: nn.Module, name: str) -> nn.Module:
    """The submodule called ``name`` in ``model.named_modules()`` (dotted, e.g. ``layer3.1.conv2``): the one resolver
    of every layer option. Another name is a one-line MethodError listing the first 30 names, the closest ones and
    where to see all (``nnsee layers RUN``)."""
    modules = dict(model.named_modules())
    if not isinstance(name, str) or name not in modules or name == "":
        import difflib

        from nnsee.errors import first_few

        names = [n for n in modules if n]
        close = difflib.get_close_matches(str(name), names, n=3, cutoff=0.6)
        hint = f"; did you mean {first_few(close)}?" if close else ""
        more = " (nnsee layers RUN lists them all, with output shapes)" if len(names) > 30 else ""
        raise MethodError(f"the model has no layer {name!r}; its layers are: "
                          f"{first_few(names, 30, quote=False) or 'none'}{more}{hint}")
    return modules[name]


def leaf_modules(model: nn.Module) -> list[nn.Module]:
    """The modules of ``model`` without children (the model itself if it has none)."""
    return [m for m in model.modules() if next(m.children(), None) is None]


# ---------------------------------------------------------------------------------------------- evaluation mode


@contextmanager
def eval_mode(model: nn.Module, grad: bool = False) -> Iterator[nn.Module]:
    """``with eval_mode(model):`` ``model.eval()`` and ``torch.no_grad()`` (``grad=True``: ``torch.enable_grad()``).

    On leaving, ``model.train(flag)`` with the model's own flag, and then every submodule whose own flag differed
    (a frozen batch norm inside a training model) gets it back. A model already in eval mode throughout is left
    alone (``model.eval()`` walks every module in Python: tens of microseconds a call even for a small CNN).
    """
    modules = list(model.modules())
    flags = [m.training for m in modules]
    training = any(flags)
    if training:
        model.eval()
    try:
        with torch.enable_grad() if grad else torch.no_grad():
            yield model
    finally:
        if training or any(m.training for m in modules):
            model.train(flags[0])
            for m, flag in zip(modules, flags, strict=True):
                if m.training != flag:
                    m.training = flag


# ------------------------------------------------------------------------------------------------------ hooks


@contextmanager
def forward_hooks(modules: Iterable[nn.Module], hook: ForwardHook | PreHook, *, pre: bool = False,
                  always_call: bool = False) -> Iterator[None]:
    """``hook`` registered on each of ``modules`` as a forward hook (``pre=True``: a forward-pre hook) for the block.

    ``always_call``: a forward hook that also runs when the module's forward raises (see
    ``nn.Module.register_forward_hook``). The hooks are removed on leaving, also when registering one fails.
    """
    handles = []
    try:
        for m in modules:
            handles.append(m.register_forward_pre_hook(hook) if pre  # type: ignore[arg-type]
                           else m.register_forward_hook(hook, always_call=always_call))  # type: ignore[arg-type]
        yield
    finally:
        for h in handles:
            h.remove()


def _one_tensor(layer: str, out: object) -> torch.Tensor:
    if not isinstance(out, torch.Tensor):
        raise MethodError(f"layer {layer!r} returns a {type(out).__name__}, not one tensor")
    return out


@contextmanager
def on_output(model: nn.Module, layer: str, fn: Callable[[torch.Tensor], torch.Tensor | None]) -> Iterator[None]:
    """``fn(output)`` at each call of ``layer`` (which must return one tensor); a tensor it returns flows on to the
    rest of the model instead of the layer's output, None leaves the output as it is."""
    module = get_module(model, layer)

    def hook(_m: nn.Module, _i: object, out: object) -> torch.Tensor | None:
        return fn(_one_tensor(layer, out))

    with forward_hooks([module], hook):
        yield


@dataclass
class Captured:
    """What :func:`capture` saw: the layer's output at its latest call (None before any), and the number of calls."""

    output: torch.Tensor | None = None
    calls: int = 0


@contextmanager
def capture(model: nn.Module, layer: str, *, detach: bool = True, clone: bool = False) -> Iterator[Captured]:
    """``with capture(model, "fc1") as seen: model(x)`` leaves the latest output of ``layer`` in ``seen.output``.

    ``detach=False`` keeps the output's autograd graph (to differentiate with respect to it). ``clone=True`` hands
    the rest of the model a clone, so an in-place op after the layer (``nn.ReLU(inplace=True)``) changes the clone,
    not the output kept (as Captum clones its layer evaluations).
    """
    box = Captured()

    def keep(out: torch.Tensor) -> torch.Tensor | None:
        box.output = out.detach() if detach else out
        box.calls += 1
        return out.clone() if clone else None

    with on_output(model, layer, keep):
        yield box


@contextmanager
def replace_output(model: nn.Module, layer: str, fn: Callable[[torch.Tensor], torch.Tensor]) -> Iterator[None]:
    """While inside, the rest of the model gets ``fn(output)`` instead of the output of ``layer``."""
    with on_output(model, layer, fn):
        yield


@contextmanager
def zero_units(model: nn.Module, layer: str, units: Sequence[int] | torch.Tensor) -> Iterator[None]:
    """While inside, the output of ``layer`` has the given units (last axis) set to 0 (on a clone of the output)."""
    index = torch.as_tensor(units, dtype=torch.long)

    def zeroed(output: torch.Tensor) -> torch.Tensor:
        output = output.clone()
        output[..., index.to(output.device)] = 0
        return output

    with replace_output(model, layer, zeroed):
        yield


@contextmanager
def layer_reader(model: nn.Module, layer: str) -> Iterator[Callable[[torch.Tensor], torch.Tensor]]:
    """``with layer_reader(model, "conv2") as read: a = read(x)``: the output of ``layer`` at its **last** call in the
    forward pass, the rule of every nnsee method for a layer called more than once (Captum's: its layer and neuron
    methods keep the last call's output).

    The first read runs the whole forward pass and counts the layer's calls, ``k``; later reads of the block stop
    the forward pass right after the ``k``-th call by raising :class:`StopForward` (nothing after it is computed),
    so they must call the layer as often as the first (the same model; a later pass with fewer calls still gives
    its last). The output is returned as the layer gave it (with its autograd graph when gradients are on).
    """
    box: dict[str, torch.Tensor] = {}
    count = {"calls": 0, "per_pass": 0}

    def keep(out: torch.Tensor) -> None:
        box["out"] = out
        count["calls"] += 1
        if count["calls"] == count["per_pass"]:
            raise StopForward

    def read(x: torch.Tensor) -> torch.Tensor:
        box.clear()
        count["calls"] = 0
        with suppress(StopForward):
            model(x)
        if "out" not in box:
            raise MethodError(f"layer {layer!r} was not called in the forward pass")
        count["per_pass"] = count["per_pass"] or count["calls"]
        return box.pop("out")

    with on_output(model, layer, keep):
        yield read


@contextmanager
def watch_leaves(model: nn.Module, fn: Callable[[nn.Module, tuple[Any, ...], Any], None]) -> Iterator[None]:
    """``fn(module, inputs, output)`` after each call of every leaf module of ``model``, in call order."""

    def hook(m: nn.Module, inputs: tuple[Any, ...], out: Any) -> None:
        fn(m, inputs, out)

    with forward_hooks(leaf_modules(model), hook):
        yield


def is_training(model: nn.Module) -> bool:
    """Whether ``model`` is in train mode (dropout active, BatchNorm on batch statistics)."""
    return bool(model.training)


def lasting_output_hook(model: nn.Module, hook: ForwardHook) -> nn.Module:
    """Register ``hook`` as a lasting forward hook of ``model`` (it may replace the output, e.g. pick the logits of
    a tuple), once: when a hook of the same type is already registered, nothing is added."""
    if not any(type(h) is type(hook) for h in model._forward_hooks.values()):
        model.register_forward_hook(hook)
    return model
