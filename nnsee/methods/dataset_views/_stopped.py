"""Forward passes that stop after the deepest layer they read: the forward floor of the dataset views.

Every nnsee method reads a layer at its **last** call in the forward pass (Captum's rule for a layer called more
than once). :func:`layer_calls` learns, from one whole no-grad pass of one image, how often each layer is called,
which layer's last call ends last (the *stop*), and the bytes of every tensor one image makes up to there.
:func:`stopped_pass` then runs each batch only that far: a hook hands every layer's output at its last call to
``at_last`` (before any later in-place op can change it) and the pass ends right after the stop layer's last call
by raising :class:`~nnsee.models.hooks.StopForward`, so nothing past it is computed.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass

import torch
from torch import nn

from nnsee.errors import MethodError
from nnsee.models.hooks import StopForward, forward_hooks, get_module, on_output, watch_leaves


@dataclass(frozen=True)
class LayerCalls:
    """What one whole pass of one image showed: ``calls`` per layer, the ``stop`` layer (its last call ends
    last), and for one image up to the stop the ``largest`` tensor and the ``total`` of the input and every leaf
    module's output, in bytes (the working set of a no-grad pass, and what autograd keeps for a backward pass)."""

    calls: dict[str, int]
    stop: str
    largest: int
    total: int


def _bytes(t: object) -> int:
    return t.numel() * t.element_size() if isinstance(t, torch.Tensor) else 0


def layer_calls(model: nn.Module, x: torch.Tensor, layers: Sequence[str]) -> LayerCalls:
    """:class:`LayerCalls` of ``layers`` from one whole no-grad pass of ``x`` (give one image: ``x[:1]``)."""
    layers = list(dict.fromkeys(layers))
    by_id = {id(get_module(model, name)): name for name in layers}
    tick = itertools.count()
    calls = dict.fromkeys(layers, 0)
    ended: dict[str, int] = {}
    leaves: list[tuple[int, int]] = []  # (tick, bytes) of each leaf call

    def leaf(_m: nn.Module, _i: object, out: object) -> None:
        leaves.append((next(tick), _bytes(out)))

    def layer(m: nn.Module, _i: object, _out: object) -> None:
        name = by_id[id(m)]
        calls[name] += 1
        ended[name] = next(tick)

    modules = [get_module(model, name) for name in layers]
    with torch.no_grad(), watch_leaves(model, leaf), forward_hooks(list({id(m): m for m in modules}.values()), layer):
        try:  # leaf hooks first: a leaf layer's own output is counted before its layer event
            _on_meta(model, x)
        except Exception:  # noqa: BLE001 - an op without a meta kernel, data-dependent code: the real pass
            tick, leaves[:], calls, ended = itertools.count(), [], dict.fromkeys(layers, 0), {}
            model(x.clone())
    missing = [name for name in layers if not calls[name]]
    if missing:
        raise MethodError(f"layer {missing[0]!r} was not called in the forward pass")
    stop = max(layers, key=ended.__getitem__)
    upto = [b for t, b in leaves if t < ended[stop]]
    return LayerCalls(calls, stop, max([_bytes(x), *upto]), _bytes(x) + sum(upto))


def _on_meta(model: nn.Module, x: torch.Tensor) -> None:
    """The forward pass of ``x`` with every parameter, buffer and the input on PyTorch's ``meta`` device: shapes and
    hook calls without arithmetic (a ResNet-18 pass of one 224-px image: 50-80 ms here instead of 0.3-0.9 s; the
    first meta pass of a process loads the meta kernels, about 2 s and 57 MB once)."""
    state = {name: t.to("meta") for name, t in itertools.chain(model.named_parameters(), model.named_buffers())}
    torch.func.functional_call(model, state, (x.to("meta"),))


@contextmanager
def stopped_pass(model: nn.Module, calls: dict[str, int], stop: str,
                 at_last: Callable[[str, torch.Tensor], None] = lambda _name, _out: None,
                 meta: bool = False) -> Iterator[Callable[[torch.Tensor], None]]:
    """``with stopped_pass(model, calls, stop, at_last) as run: run(x)`` calls ``at_last(layer, output)`` at the
    ``calls[layer]``-th call of each layer and ends the pass right after ``stop``'s. A pass that reaches a layer
    fewer times than ``calls`` says so in one line (nnsee reads a layer at its last call). ``meta``: the pass runs
    on the ``meta`` device (shapes and hook calls only)."""
    count = dict.fromkeys(calls, 0)

    def hook_for(name: str) -> Callable[[torch.Tensor], None]:
        def seen(out: torch.Tensor) -> None:
            count[name] += 1
            if count[name] == calls[name]:
                at_last(name, out)
                if name == stop:
                    raise StopForward

        return seen

    def run(x: torch.Tensor) -> None:
        for name in count:
            count[name] = 0
        with suppress(StopForward):
            _on_meta(model, x) if meta else model(x)
        short = [name for name in calls if count[name] < calls[name]]
        if short:
            raise MethodError(f"layer {short[0]!r} was called {count[short[0]]} times in a forward pass and "
                              f"{calls[short[0]]} times in the first: nnsee reads a layer at its last call, so give "
                              "a model whose passes call it equally often")

    with ExitStack() as stack:
        for name in calls:
            stack.enter_context(on_output(model, name, hook_for(name)))
        yield run


def autograd_batch_size(model: nn.Module, x: torch.Tensor, budget: int, layer: str | None = None,
                        seen: LayerCalls | None = None, most: int = 256) -> int:
    """Images per gradient-on pass: ``budget`` bytes over what autograd keeps for one image of ``x``, the input
    and every leaf output up to ``layer``'s last call (``layer=None``: the whole pass), within 1..``most``.
    ``seen``: :func:`layer_calls` already made for ``layer``."""
    from nnsee.models.hooks import eval_mode

    if seen is None:
        with eval_mode(model):
            if layer is None:
                total = [_bytes(x[:1])]

                def size(_m: nn.Module, _i: object, out: object) -> None:
                    total[0] += _bytes(out)

                with torch.no_grad(), watch_leaves(model, size):
                    try:
                        _on_meta(model, x[:1])
                    except Exception:  # noqa: BLE001 - as in layer_calls: the real pass
                        total[0] = _bytes(x[:1])
                        model(x[:1].clone())
                return int(min(most, max(1, budget // max(1, total[0]))))
            seen = layer_calls(model, x[:1], [layer])
    return int(min(most, max(1, budget // max(1, seen.total))))
