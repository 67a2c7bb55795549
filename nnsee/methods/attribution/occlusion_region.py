"""Occluded copies recomputed only where the occluder changes them (Zeiler & Fergus occlusion, made cheap), through
any model ``torch.fx`` can trace: chains, residual blocks (both branches and the addition), concatenations.

Hiding an ``h × w`` window changes a convolution's output only inside the window grown by the kernel, a pooling
output only inside the window's image under the pooling, a pointwise layer's output only inside the window itself,
and a sum (or product, or channel concatenation) of two such outputs only inside the union of their regions. So
each node of the model's traced graph that is *local* is computed per occluded copy as a fixed-size *crop* (the
region that may differ from the clean image's activation ``A``) at a per-copy origin:

* the input's crop is the occluded window;
* a window layer (conv, pool) with kernel ``k``, stride ``s``, padding ``p``, dilation ``d`` maps an input crop of
  length ``L`` at ``y`` to the output crop of length ``L' = min(O, ⌊(L − 1 + d(k − 1)) / s⌋ + 1)`` at
  ``y' = clamp(⌈(y − d(k − 1) + p) / s⌉, 0, O − L')``, computed from the input rows
  ``[y' s − p, y' s − p + (L' − 1) s + d(k − 1) + 1)`` of the clean activation with the copy's crop pasted in
  (padding applied to the clean activation, so the crop is filtered without padding);
* a pointwise layer maps the crop itself;
* a binary elementwise operation (``+``, ``−``, ``×``) or channel concatenation of two local nodes takes the box
  ``[min(y_a, y_b), max(y_a + L_a, y_b + L_b))``, of the length ``L`` that covers it at every origin (clamped to
  ``[0, O − L]``), each operand being its clean activation with its crop pasted in;
* every other node (a global pooling, a flatten, a linear layer, a hooked module, anything the planner cannot prove
  local), and every node whose crop would cover its whole output, runs on whole copies: its local inputs are their
  clean activations with the crop pasted in.

Every value outside a crop is the clean activation itself, and inside it the same layer on the same inputs, so the
scores equal full forward passes up to float rounding (the tests check it against plain forwards and Captum). The
clean pass is computed the same way as the copies, and checked once against the model's own forward: a traced graph
that does not reproduce the model (data-dependent Python, random layers) gives no plan.

Which layers are local is decided in :mod:`.region_layers`. A model or container with forward hooks is not traced
into (its hooks must see whole activations); with global forward hooks, or a model ``torch.fx`` cannot trace, there
is no plan and occlusion runs full passes.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812
from torch import fx, nn

from nnsee.methods.attribution.region_layers import (
    WindowLayer,
    global_hooks,
    hooked,
    plain_call,
    pointwise,
    window_layer,
)

_POINTWISE_FUNCTIONS = {torch.relu, F.relu, torch.sigmoid, F.sigmoid, torch.tanh, F.tanh, F.gelu, F.silu,
                        F.leaky_relu, F.relu6, F.hardtanh, F.elu, F.hardswish, F.hardsigmoid, F.mish, F.softplus,
                        F.prelu, F.batch_norm}
_POINTWISE_METHODS = {"relu", "relu_", "sigmoid", "sigmoid_", "tanh", "tanh_"}
_BINARY_FUNCTIONS = {operator.add, operator.sub, operator.mul, torch.add, torch.sub, torch.mul}
_BINARY_METHODS = {"add", "sub", "mul", "add_", "sub_", "mul_"}
#: a node whose crop covers at least this fraction of its output runs on whole copies (the crop saves nothing)
WHOLE = 1.0


class _Tracer(fx.Tracer):
    """torch.fx's tracer that keeps hooked or call-overriding modules whole (their hooks must see whole tensors)."""

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return hooked(m) or not plain_call(m) or super().is_leaf_module(m, qualname)


@dataclass(frozen=True)
class RegionPlan:
    """A model's traced graph and, per node, how it may be computed: ``local`` maps the name of every node that can
    run on crops to its kind (``input``, ``window``, ``pointwise``, ``binary``, ``cat``); ``window`` holds the window
    layers; ``const`` the nodes that do not depend on the input."""

    model: nn.Module
    graph: fx.Graph
    local: dict[str, str]
    window: dict[str, WindowLayer]
    const: set[str]
    checked: dict[tuple, bool] = field(default_factory=dict)  # input shape/dtype -> the trace reproduced the model

    @property
    def nodes(self) -> list[fx.Node]:
        return list(self.graph.nodes)


def region_plan(model: nn.Module) -> RegionPlan | None:
    """How to recompute occluded copies locally, or None when the model cannot be traced or has no local window
    layer on its input (call in the mode the model will run in: the trace fixes branches on the train flag)."""
    if global_hooks() or hooked(model) or not plain_call(model):
        return None
    try:
        graph = _Tracer().trace(model)
    except Exception:  # noqa: BLE001 - any model torch.fx cannot trace runs full passes
        return None
    placeholders = [n for n in graph.nodes if n.op == "placeholder"]
    if not placeholders:
        return None
    local: dict[str, str] = {placeholders[0].name: "input"}
    window: dict[str, WindowLayer] = {}
    const = {n.name for n in placeholders[1:]}
    users = {n.name: len(n.users) for n in graph.nodes}
    for node in graph.nodes:
        if node.op in ("placeholder", "output"):
            continue
        inputs = node.all_input_nodes
        if all(i.name in const for i in inputs):
            const.add(node.name)
            continue
        kind = _local_kind(model, node, local, const, users)
        if kind == "window":
            window[node.name] = window_layer(model.get_submodule(node.target))  # type: ignore[assignment]
        if kind is not None:
            local[node.name] = kind
    if not window:
        return None
    return RegionPlan(model, graph, local, window, const)


def _in_place(node: fx.Node, model: nn.Module) -> bool:
    if node.op == "call_module":
        return bool(getattr(model.get_submodule(node.target), "inplace", False))
    if node.op == "call_method":
        return str(node.target).endswith("_")
    return bool(node.kwargs.get("inplace", False))


def _local_kind(model: nn.Module, node: fx.Node, local: dict[str, str], const: set[str],
                users: dict[str, int]) -> str | None:
    """The node's kind when it can run on crops (its spatial inputs local), else None."""
    tensors = node.all_input_nodes
    spatial = [i for i in tensors if i.name not in const]
    if not spatial or any(i.name not in local for i in spatial):
        return None
    first = node.args[0] if node.args else None
    if _in_place(node, model) and (not isinstance(first, fx.Node) or users[first.name] > 1):
        return None  # an in-place change seen by another user: only whole tensors show it
    if node.op == "call_module":
        m = model.get_submodule(node.target)
        if node.kwargs or len(node.args) != 1 or hooked(m):
            return None
        if window_layer(m) is not None:
            return "window"
        return "pointwise" if pointwise(m) else None
    if node.op == "call_function" and node.target in _POINTWISE_FUNCTIONS or (
            node.op == "call_method" and node.target in _POINTWISE_METHODS):
        # the crop is the first argument; any other tensor (a PReLU weight, batch norm statistics) is per channel
        if spatial == [first] and (node.target is not F.batch_norm or not _batch_statistics(node)):
            return "pointwise"
        return None
    if (node.op == "call_function" and node.target in _BINARY_FUNCTIONS or node.op == "call_method"
            and node.target in _BINARY_METHODS) and len(node.args) == 2 and not node.kwargs:
        return "binary"
    if node.op == "call_function" and node.target is torch.cat and len(node.args) == 1 and isinstance(
            node.args[0], (list, tuple)) and node.kwargs.get("dim", 0) in (1, -3) and not set(node.kwargs) - {"dim"}:
        return "cat" if all(isinstance(a, fx.Node) and a.name in local for a in node.args[0]) else None
    return None


def _batch_statistics(node: fx.Node) -> bool:
    """Whether a traced ``F.batch_norm`` normalizes with the batch's own statistics (not elementwise)."""
    training = node.args[5] if len(node.args) > 5 else node.kwargs.get("training", False)
    return training is not False


def _fetch(model: nn.Module, target: str) -> Any:
    obj: Any = model
    for part in target.split("."):
        obj = getattr(obj, part)
    return obj


def run_node(model: nn.Module, node: fx.Node, args: tuple, kwargs: dict) -> Any:
    """The node's operation on its (whole or crop) arguments."""
    if node.op == "call_module":
        return model.get_submodule(node.target)(*args, **kwargs)
    if node.op == "call_function":
        return node.target(*args, **kwargs)  # type: ignore[operator]
    if node.op == "call_method":
        return getattr(args[0], node.target)(*args[1:], **kwargs)  # type: ignore[arg-type]
    if node.op == "get_attr":
        return _fetch(model, node.target)  # type: ignore[arg-type]
    raise ValueError(node.op)


@dataclass
class _Box:
    """A crop's per-axis geometry for every possible origin: ``origin[axis]`` (P_axis,) int64 tensor indexed by the
    input crop's origin along that axis; ``length`` and the node's output ``size`` per axis."""

    origin: tuple[torch.Tensor, torch.Tensor]
    length: tuple[int, int]
    size: tuple[int, int]


@dataclass
class Layout:
    """The plan at one input shape and occluder size: per node its mode (``crop``, ``whole`` or ``const``), the
    crop boxes, and the clean activations to keep (``sources``: (node, pad value) -> padding)."""

    plan: RegionPlan
    window: tuple[int, int]
    mode: dict[str, str]
    boxes: dict[str, _Box]
    sources: dict[tuple[str, float], tuple[int, int]]
    aligned: set[tuple[str, str]]  # (binary or cat node, operand) whose crops share the box: no gather
    shapes: dict[str, tuple[int, ...]]
    flops: tuple[float, float]  # multiply-adds of convolutions and linear layers: (per copy here, per full pass)

    @property
    def skipped(self) -> float:
        """The fraction of a full pass's convolution and linear multiply-adds that the crops skip."""
        return 1.0 - self.flops[0] / self.flops[1] if self.flops[1] else 0.0


def _shape_pass(plan: RegionPlan, x: torch.Tensor) -> tuple[dict[str, tuple[int, ...]], Any]:
    """Every tensor node's shape on ``x`` (one image) and the traced graph's output, run node by node."""
    env: dict[str, Any] = {}
    shapes: dict[str, tuple[int, ...]] = {}
    out = None
    for node in plan.nodes:
        if node.op == "placeholder":
            env[node.name] = x.clone() if plan.local.get(node.name) == "input" else _default(node)  # in-place ops
        elif node.op == "output":
            out = fx.node.map_arg(node.args[0], lambda n: env[n.name])
        else:
            args = fx.node.map_arg(node.args, lambda n: env[n.name])
            kwargs = fx.node.map_arg(node.kwargs, lambda n: env[n.name])
            env[node.name] = run_node(plan.model, node, args, kwargs)
        if isinstance(env.get(node.name), torch.Tensor):
            shapes[node.name] = tuple(env[node.name].shape)
    return shapes, out


def _default(node: fx.Node) -> Any:
    return node.args[0] if node.args else None


def layout(plan: RegionPlan, x: torch.Tensor, window: tuple[int, int]) -> Layout | None:
    """The plan's layout for images shaped like ``x`` (one is run) and ``window = (h, w)`` crops; None when the
    traced graph does not reproduce the model's output on ``x[:1]``."""
    one = x[:1]
    if one.ndim != 4:
        return None
    shapes, out = _shape_pass(plan, one)
    key = (tuple(one.shape), one.dtype, one.device)
    if key not in plan.checked:
        plan.checked[key] = _same(out, plan.model(one.clone()))
    if not plan.checked[key]:
        return None
    mode: dict[str, str] = {}
    boxes: dict[str, _Box] = {}
    height, width = x.shape[2], x.shape[3]
    for node in plan.nodes:
        name = node.name
        if node.op == "output":
            continue
        if name in plan.const:
            mode[name] = "const"
            continue
        kind = plan.local.get(name)
        shape = shapes.get(name)
        spatial = [i for i in node.all_input_nodes if mode.get(i.name) != "const"]
        if kind is None or shape is None or len(shape) != 4 or any(mode.get(i.name) != "crop" for i in spatial):
            mode[name] = "whole"
            continue
        box = _box(plan, node, kind, shape, boxes, shapes, (height, width), window)
        whole = box is None or (kind != "input" and box.length[0] * box.length[1] >= WHOLE * shape[2] * shape[3])
        mode[name] = "whole" if whole else "crop"
        if box is not None and not whole:
            boxes[name] = box
    sources: dict[tuple[str, float], tuple[int, int]] = {}
    aligned: set[tuple[str, str]] = set()
    for node in plan.nodes:
        if mode.get(node.name) == "const":
            continue
        kind = plan.local.get(node.name) if mode.get(node.name) == "crop" else None
        for i in node.all_input_nodes:
            if mode.get(i.name) != "crop" or kind == "pointwise":  # a pointwise node maps the crop itself
                continue
            if kind in ("binary", "cat") and _aligned(boxes[i.name], boxes[node.name]):
                aligned.add((node.name, i.name))  # the operand's crop is the output's box: used as it is
                continue
            step = plan.window[node.name] if kind == "window" else None
            key2 = (i.name, step.pad_value if step else 0.0)
            pad, old = (step.padding if step else (0, 0)), sources.get(key2, (0, 0))
            sources[key2] = (max(old[0], pad[0]), max(old[1], pad[1]))
    return Layout(plan, window, mode, boxes, sources, aligned, shapes, _flops(plan, mode, boxes, shapes))


def _aligned(a: _Box, b: _Box) -> bool:
    return a.length == b.length and all(torch.equal(p, q) for p, q in zip(a.origin, b.origin, strict=True))


def _same(ours: Any, theirs: Any) -> bool:
    if not (isinstance(ours, torch.Tensor) and isinstance(theirs, torch.Tensor)) or ours.shape != theirs.shape:
        return False
    tol = 1e-9 if ours.dtype == torch.float64 else 1e-4
    if not theirs.numel():
        return True
    scale = float(theirs.abs().max())
    return bool(torch.isfinite(ours).all()) and float((ours - theirs).abs().max()) <= tol * max(scale, 1.0)


def _box(plan: RegionPlan, node: fx.Node, kind: str, shape: tuple[int, ...], boxes: dict[str, _Box],
         shapes: dict[str, tuple[int, ...]], image: tuple[int, int], window: tuple[int, int]) -> _Box | None:
    size = (shape[2], shape[3])
    if kind == "input":
        origin = tuple(torch.arange(d - w + 1) for d, w in zip(image, window, strict=True))
        return _Box(origin, window, size)  # type: ignore[arg-type]
    spatial = [i for i in node.all_input_nodes if i.name in boxes]
    if kind == "pointwise":
        return boxes[spatial[0].name]
    if kind == "window":
        step, src = plan.window[node.name], boxes[spatial[0].name]
        origin, length = [], []
        for axis in (0, 1):
            lo = min(size[axis], (src.length[axis] - 1 + step.reach(axis)) // step.stride[axis] + 1)
            y = src.origin[axis]
            y0 = (-((step.reach(axis) - step.padding[axis] - y) // step.stride[axis])).clamp(0, size[axis] - lo)
            origin.append(y0)
            length.append(lo)
        return _Box(tuple(origin), tuple(length), size)  # type: ignore[arg-type]
    parts = [boxes[i.name] for i in spatial]
    if any(shapes[i.name][2:] != size for i in spatial) or any(
            i.name not in boxes and not _flat_in_space(shapes.get(i.name)) for i in node.all_input_nodes):
        return None  # broadcasting over space (an operand of another size, or a constant that varies over space)
    origin, length = [], []
    for axis in (0, 1):
        start = torch.stack([p.origin[axis] for p in parts]).amin(0)
        end = torch.stack([p.origin[axis] + p.length[axis] for p in parts]).amax(0)
        lo = min(size[axis], int((end - start).max()))
        origin.append(start.clamp(0, size[axis] - lo))
        length.append(lo)
    return _Box(tuple(origin), tuple(length), size)  # type: ignore[arg-type]


def _flat_in_space(shape: tuple[int, ...] | None) -> bool:
    """Whether a constant of this shape (None: not a tensor) is the same at every position of an (N, C, H, W) map."""
    return shape is None or all(d == 1 for d in shape[-2:])


def _flops(plan: RegionPlan, mode: dict[str, str], boxes: dict[str, _Box],
           shapes: dict[str, tuple[int, ...]]) -> tuple[float, float]:
    """Multiply-adds of the convolutions and linear layers per copy: (with crops, in a full pass)."""
    ours = full = 0.0
    for node in plan.nodes:
        if node.op != "call_module" or node.name not in shapes:
            continue
        m = plan.model.get_submodule(node.target)
        shape = shapes[node.name]
        if isinstance(m, nn.Conv2d):
            per = m.weight.numel() // m.out_channels * m.out_channels  # (C_in / groups) k_h k_w C_out
            whole = per * shape[2] * shape[3]
            box = boxes.get(node.name)
            full += whole
            ours += per * box.length[0] * box.length[1] if mode[node.name] == "crop" and box else whole
        elif isinstance(m, nn.Linear):
            work = m.in_features * m.out_features * math.prod(shape[1:-1])
            full += work
            ours += work
    return ours, full
