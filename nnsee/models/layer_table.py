"""The named layers of a model (``nnsee layers RUN``): dotted name, type, output shape, receptive field, weights.

One probe forward pass of a zero image ``(1, C, H, W)`` (eval mode, no gradients) with a forward hook on every named
module records, at each module's last call, its output shape (batch axis dropped) and its receptive field. The field
follows the tensors: the model's input has size 1 and jump 1; a module called on a tensor whose field is known gives,
per axis, for a ``Conv2d``/``MaxPool2d``/``AvgPool2d`` of kernel ``k``, dilation ``d``, stride ``s``:
``size + d(k−1)·jump`` and ``jump·s``; elementwise layers (activations, BatchNorm, dropout) keep it; global layers
(``Linear``, adaptive pooling, ``Flatten``) and everything after them see the whole image. A tensor made outside a
module (a residual ``+``, a functional call) has no chain, so what follows it shows ``-``: the field is defined only
where a chain of layers defines it. A container's row is that of its output tensor.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from nnsee.models.hooks import eval_mode, forward_hooks

#: The field of every unit is the whole image (after a global layer).
WHOLE = "whole image"
_WINDOWED = (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)
_GLOBAL = (nn.Linear, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d, nn.Flatten)
_KEEPS = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU, nn.Mish, nn.Sigmoid,
          nn.Tanh, nn.Hardtanh, nn.Hardswish, nn.Hardsigmoid, nn.Softplus, nn.BatchNorm2d, nn.Dropout, nn.Dropout2d,
          nn.Identity, nn.LocalResponseNorm, nn.GroupNorm, nn.InstanceNorm2d)
#: Graph operations (a torch.export archive's leaves) that keep the field.
_KEEPING_OPS = {f"aten.{op}" for op in ("relu", "relu_", "gelu", "silu", "silu_", "sigmoid", "tanh", "hardtanh",
                                        "hardtanh_", "leaky_relu", "leaky_relu_", "dropout", "clone", "contiguous")}

Field = tuple[tuple[int, int], tuple[int, int]] | str  # ((size_h, size_w), (jump_h, jump_w)) or WHOLE


@dataclass(frozen=True)
class LayerRow:
    """One named layer: ``output_shape`` without the batch axis (None: not a tensor, or never called), ``calls`` in
    one forward pass, ``weights`` (its parameters, its children's included), ``field`` and ``stride`` as text
    (``"11x11"`` and ``"4"``, ``"whole image"`` and ``"-"``, or ``"-"`` where no chain defines them)."""

    name: str
    type: str
    output_shape: tuple[int, ...] | None
    calls: int
    weights: int
    field: str
    stride: str

    def shape_text(self) -> str:
        if self.output_shape is None:
            return "-" if self.calls else "not called"
        return "x".join(map(str, self.output_shape)) or "scalar"


def _pair(value: Any) -> tuple[int, int]:
    return (int(value), int(value)) if isinstance(value, int) else (int(value[0]), int(value[-1]))


def _windowed(m: nn.Module, field: tuple[tuple[int, int], tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    kernel = _pair(m.kernel_size)
    stride = _pair(m.stride if m.stride not in (None, ()) else m.kernel_size)
    dilation = _pair(getattr(m, "dilation", 1))
    (size, jump) = field
    return (tuple(size[a] + dilation[a] * (kernel[a] - 1) * jump[a] for a in range(2)),
            tuple(jump[a] * stride[a] for a in range(2)))


def _type(m: nn.Module) -> str:
    from nnsee.models.exported import describe_graph

    graph = describe_graph(m)
    if graph is None:
        return type(m).__name__
    return "graph" if next(m.children(), None) is not None else graph


def _keeps(m: nn.Module) -> bool:
    if isinstance(m, _KEEPS):
        return True
    from nnsee.models.exported import op_name, single_op

    node = single_op(m)
    return node is not None and op_name(node) in _KEEPING_OPS


def _field_after(m: nn.Module, before: Field | None) -> Field | None:
    if before == WHOLE or isinstance(m, _GLOBAL):
        return WHOLE
    if before is None:
        return None
    if isinstance(m, _WINDOWED):
        return _windowed(m, before)  # type: ignore[arg-type, return-value]
    return before if _keeps(m) else None


def _text(field: Field | None) -> tuple[str, str]:
    if field is None:
        return "-", "-"
    if field == WHOLE:
        return WHOLE, "-"
    (h, w), (jh, jw) = field  # type: ignore[misc]
    return (f"{h}x{w}" if h != w else f"{h}x{h}"), (str(jh) if jh == jw else f"{jh}x{jw}")


def layer_table(model: nn.Module, input_shape: Sequence[int]) -> list[LayerRow]:
    """Every named layer of ``model`` (``named_modules()`` order, the model itself left out) for inputs
    ``input_shape`` (C, H, W); see the module doc. The model and its flags are left as they were."""
    shape = tuple(int(d) for d in input_shape)
    names = {id(m): n for n, m in model.named_modules() if n}
    first = next(iter(model.parameters()), None)
    probe = torch.zeros((1, *shape), device=first.device if first is not None else "cpu",
                        dtype=first.dtype if first is not None and first.is_floating_point() else torch.float32)
    fields: dict[int, Field | None] = {id(probe): ((1, 1), (1, 1))}
    kept: list[Any] = [probe]  # every output stays alive for the pass, so no id is reused
    seen: dict[str, tuple[tuple[int, ...] | None, Field | None]] = {}
    calls: dict[str, int] = {}

    def hook(m: nn.Module, inputs: tuple[Any, ...], out: Any) -> None:
        name = names.get(id(m))
        if name is None:
            return
        kept.append(out)
        if next(m.children(), None) is None:  # a leaf: the field of its input, through it
            before = fields.get(id(inputs[0])) if inputs and isinstance(inputs[0], torch.Tensor) else None
            fields[id(out)] = _field_after(m, before)
        shape_out = tuple(out.shape[1:]) if isinstance(out, torch.Tensor) and out.ndim >= 1 else None
        seen[name] = (shape_out, fields.get(id(out)))
        calls[name] = calls.get(name, 0) + 1

    modules = [m for n, m in model.named_modules() if n]
    with eval_mode(model), forward_hooks(modules, hook):
        model(probe)
    rows = []
    for name, m in model.named_modules():
        if not name:
            continue
        shape_out, field = seen.get(name, (None, None))
        size, stride = _text(field)
        rows.append(LayerRow(name, _type(m), shape_out, calls.get(name, 0), sum(p.numel() for p in m.parameters()),
                             size, stride))
    return rows


def as_json(rows: Sequence[LayerRow]) -> list[dict[str, Any]]:
    """JSON-ready rows (``output_shape`` a list or None)."""
    return [{**asdict(r), "output_shape": list(r.output_shape) if r.output_shape is not None else None} for r in rows]


def format_table(rows: Sequence[LayerRow]) -> list[str]:
    """The rows as aligned text lines, a header first (nested names indented by their depth)."""
    header = ("layer", "type", "output", "field", "stride", "weights")
    cells = [header] + [("  " * r.name.count(".") + r.name, r.type, r.shape_text(), r.field, r.stride,
                         f"{r.weights:,}") for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(header))]
    return ["  ".join(c[i].ljust(widths[i]) if i < len(header) - 1 else c[i].rjust(widths[i]) for i in range(len(c)))
            .rstrip() for c in cells]
