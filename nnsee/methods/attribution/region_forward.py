"""The scores of occluded copies computed by :mod:`.occlusion_region`'s layout: the clean pass once per group of
images, then per chunk of copies only the crops (and whole tensors where the layout says so)."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import fx

from nnsee.methods.attribution.occlusion_region import Layout, RegionPlan, layout, run_node
from nnsee.methods.attribution.region_fusion import fused_convolutions
from nnsee.methods.attribution.region_layers import Source


class RegionForward:
    """Scores of occluded copies of ``x`` by local recomputation; call in no_grad.

    ``forward(img, y, x, crop)``: copy b is image ``img[b]`` whose pixels ``[y_b : y_b + h, x_b : x_b + w]`` are
    replaced by ``crop[b]`` (B, C, h, w) — ``(h, w)`` the layout's window; returns the model's outputs for the copies.
    ``scores``: the clean images' outputs computed the same way as the copies'.
    """

    def __init__(self, plan: RegionPlan | Layout, x: torch.Tensor, window: tuple[int, int] | None = None) -> None:
        if isinstance(plan, RegionPlan):
            if window is None:
                raise ValueError("a RegionPlan needs the occluder's (h, w)")
            found = layout(plan, x, window)
            if found is None:
                raise ValueError("the traced graph does not reproduce the model")
            plan = found
        self.layout = lay = plan
        self.model = lay.plan.model
        self.nodes = lay.plan.nodes
        self.sources: dict[tuple[str, float], Source] = {}
        self.const: dict[str, Any] = {}
        fused, self.whole_convs, self.folded = fused_convolutions(self.model, self.nodes, lay.plan.window)
        self.windows = {**lay.plan.window, **fused}
        env: dict[str, Any] = {}
        self.last = last = _last_use(self.nodes)  # the same for every chunk: computed once
        for i, node in enumerate(self.nodes):
            name = node.name
            if node.op == "output":
                self.scores = fx.node.map_arg(node.args[0], lambda n: env[n.name])
                break
            if node.op == "placeholder":
                value = x.clone() if lay.plan.local.get(name) == "input" else (node.args[0] if node.args else None)
            elif lay.mode[name] == "crop" and name in self.windows:
                step = self.windows[name]  # as the copies: padded, channels last, no padding in the layer
                value = step.apply(step.pad(env[node.args[0].name]).contiguous(memory_format=torch.channels_last))
            else:
                value = self._whole(node, env, lambda n: env[n])
            env[name] = value
            for (src, pad_value), pad in lay.sources.items():
                if src == name:
                    self.sources[(src, pad_value)] = Source(value, pad, pad_value)
            if lay.mode[name] == "const":
                self.const[name] = value
            for done in last.get(i, ()):
                if done not in self.const:
                    env.pop(done, None)

    def stored_elements(self) -> int:
        """The elements of the clean activations kept for the images (the memory this engine holds)."""
        return sum(s.elements for s in self.sources.values())

    def copy_elements(self) -> int:
        """The largest tensor, in elements per copy, that :meth:`forward` builds."""
        lay, most = self.layout, 1
        for node in self.nodes:
            shape = lay.shapes.get(node.name)
            if shape is None or lay.mode.get(node.name) == "const":
                continue
            box = lay.boxes.get(node.name)
            if lay.mode[node.name] == "whole" or box is None:
                most = max(most, math.prod(shape[1:]))
                continue
            c, (lh, lw) = shape[1], box.length
            step = lay.plan.window.get(node.name)
            if step is not None:  # the gathered input window
                c_in = lay.shapes[node.args[0].name][1]
                most = max(most, c_in * ((lh - 1) * step.stride[0] + step.reach(0) + 1)
                           * ((lw - 1) * step.stride[1] + step.reach(1) + 1))
            most = max(most, c * lh * lw)
        return most

    def forward(self, img: torch.Tensor, y: torch.Tensor, x: torch.Tensor, crop: torch.Tensor) -> Any:
        lay, env = self.layout, {}
        whole: dict[str, torch.Tensor] = {}  # crops made whole, once per chunk

        def origin(name: str) -> tuple[torch.Tensor, torch.Tensor]:
            box = lay.boxes[name]
            return box.origin[0][y], box.origin[1][x]

        def gathered(name: str, box_name: str | None) -> torch.Tensor:
            """Node ``name``'s clean activation with its crop pasted in, over ``box_name``'s box (None: whole)."""
            src = self.sources[(name, 0.0)]
            py, px = src.pad
            cy, cx = origin(name)
            if box_name is None:
                if name not in whole:
                    zero = torch.zeros_like(cy)
                    whole[name] = src.windows(img, zero + py, zero + px, src.height - 2 * py, src.width - 2 * px,
                                              env[name], cy + py, cx + px)
                return whole[name]
            oy, ox = origin(box_name)
            (lh, lw) = lay.boxes[box_name].length
            return src.windows(img, oy + py, ox + px, lh, lw, env[name], cy + py, cx + px)

        last = self.last
        for i, node in enumerate(self.nodes):
            name = node.name
            if node.op == "output":
                return fx.node.map_arg(node.args[0], lambda n: self._value(n.name, env, gathered))
            mode = lay.mode[name]
            if node.op == "placeholder":
                env[name] = crop if lay.plan.local.get(name) == "input" else self.const.get(name)
            elif mode == "const":
                env[name] = self.const[name]
            elif mode == "whole":
                env[name] = self._whole(node, env, lambda n: self._value(n, env, gathered))
            elif name in self.folded:
                env[name] = env[node.args[0].name]
            elif name in self.windows:
                step, src_name = self.windows[name], node.args[0].name
                src = self.sources[(src_name, step.pad_value)]
                (py, px), (sy, sx) = src.pad, step.stride
                oy, ox = origin(name)
                iy, ix = origin(src_name)
                lh, lw = lay.boxes[name].length
                window = src.windows(img, oy * sy - step.padding[0] + py, ox * sx - step.padding[1] + px,
                                     (lh - 1) * sy + step.reach(0) + 1, (lw - 1) * sx + step.reach(1) + 1,
                                     env[src_name], iy + py, ix + px)
                env[name] = step.apply(window)
            elif lay.plan.local[name] == "pointwise":
                env[name] = run_node(self.model, node, *_arguments(node, env))
            else:  # binary or cat: every operand over this node's box
                def operand(n: str, name: str = name) -> Any:
                    if lay.mode[n] == "const":
                        return self.const[n]
                    return env[n] if (name, n) in lay.aligned else gathered(n, name)

                env[name] = run_node(self.model, node, *_arguments(node, env, operand))
            for done in last.get(i, ()):
                env.pop(done, None)
        raise ValueError("the traced graph has no output")

    def _whole(self, node: fx.Node, env: dict[str, Any], value: Any) -> Any:
        """A node on whole tensors: a fused convolution, a folded batch norm's input, or the node's own operation."""
        if node.name in self.folded:
            return value(node.args[0].name)
        if node.name in self.whole_convs:
            return self.whole_convs[node.name](value(node.args[0].name))
        return run_node(self.model, node, *_arguments(node, env, value))

    def _value(self, name: str, env: dict[str, Any], gathered: Any) -> Any:
        """A node's value for a node that runs on whole copies: crops made whole."""
        if self.layout.mode.get(name) == "crop":
            return gathered(name, None)
        return env[name]


def _arguments(node: fx.Node, env: dict[str, Any], value: Any = None) -> tuple[tuple, dict]:
    get = value or (lambda n: env[n])
    args = fx.node.map_arg(node.args, lambda n: get(n.name))
    kwargs = fx.node.map_arg(node.kwargs, lambda n: get(n.name))
    return args, kwargs


def _last_use(nodes: list[fx.Node]) -> dict[int, list[str]]:
    """Position of each node's last user -> the nodes whose values can be dropped after it."""
    index = {n.name: i for i, n in enumerate(nodes)}
    last: dict[str, int] = {}
    for n in nodes:
        for i in n.all_input_nodes:
            last[i.name] = max(last.get(i.name, 0), index[n.name])
    out: dict[int, list[str]] = {}
    for name, i in last.items():
        out.setdefault(i, []).append(name)
    return out

