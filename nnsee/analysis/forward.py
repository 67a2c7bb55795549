"""One forward pass that gives the logits and hands each chosen layer's output, at its last call in the pass, to a
function (nnsee reads a layer at its last call; hooks only through :mod:`nnsee.models.hooks`), and the probe of
one image that counts the calls and sizes the batches."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager

import torch
from torch import nn

from nnsee.errors import MethodError
from nnsee.methods.dataset_views._stopped import LayerCalls
from nnsee.models.hooks import on_output, watch_leaves


@contextmanager
def reading_layers(model: nn.Module, calls: dict[str, int],
                   at_last: Callable[[str, torch.Tensor], None]) -> Iterator[Callable[[torch.Tensor], torch.Tensor]]:
    """``with reading_layers(model, calls, at_last) as run: logits = run(x)`` calls ``at_last(layer, output)`` at
    the ``calls[layer]``-th call of each layer (inside its hook, before any later in-place op changes it)."""
    count = dict.fromkeys(calls, 0)

    def hook_for(name: str) -> Callable[[torch.Tensor], None]:
        def seen(out: torch.Tensor) -> None:
            count[name] += 1
            if count[name] == calls[name]:
                at_last(name, out)

        return seen

    def run(x: torch.Tensor) -> torch.Tensor:
        for name in count:
            count[name] = 0
        logits = model(x)
        short = [name for name in calls if count[name] != calls[name]]
        if short:
            raise MethodError(f"layer {short[0]!r} was called {count[short[0]]} times in a forward pass and "
                              f"{calls[short[0]]} times in the first: nnsee reads a layer at its last call, so give "
                              "a model whose passes call it equally often")
        return logits

    with ExitStack() as stack:
        for name in calls:
            stack.enter_context(on_output(model, name, hook_for(name)))
        yield run


def probe(model: nn.Module, x: torch.Tensor, layers: list[str]) -> LayerCalls:
    """Calls of each of ``layers`` and the bytes of the input and every leaf output (the largest, the total) in one
    real no-grad pass of ``x`` (give one image): what the batch size is sized by. A real pass of one image costs
    less than PyTorch's meta device the first time a process uses it (about 2.5 s to load its kernels)."""
    calls = dict.fromkeys(layers, 0)
    sizes = [x.numel() * x.element_size()]

    def leaf(_m: nn.Module, _i: object, out: object) -> None:
        sizes.append(out.numel() * out.element_size() if isinstance(out, torch.Tensor) else 0)

    def counter(name: str) -> Callable[[torch.Tensor], None]:
        def seen(_out: torch.Tensor) -> None:
            calls[name] += 1

        return seen

    with ExitStack() as stack, torch.no_grad():
        stack.enter_context(watch_leaves(model, leaf))
        for name in layers:
            stack.enter_context(on_output(model, name, counter(name)))
        model(x)
    missing = [name for name in layers if not calls[name]]
    if missing:
        raise MethodError(f"layer {missing[0]!r} was not called in the forward pass")
    return LayerCalls(calls, layers[-1] if layers else "", max(sizes), sum(sizes))
