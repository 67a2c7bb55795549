"""What a model offers the ways of seeing, read once from its modules: the front ends ask this, not a kind string.

A *dense chain* (``flatten → (Linear, act…) × L``, see :mod:`nnsee.models.dense_chain`) has a linear first layer whose
rows are images (class templates for ``L = 1``, hidden units' incoming weights for ``L > 1``); convolutional layers
give feature maps (Grad-CAM, top-9, occlusion of feature maps); ReLU modules are where guided backprop and the
deconvnet change the backward rule (functional ReLUs are watched too, so they are not required). A model adopted from
a ``torch.export`` archive runs its ReLUs as operations of its graph (``graph_relus``): no module whose backward rule
could be changed, so :attr:`Capabilities.relu_rule` says why those two methods do not apply.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from torch import nn

from nnsee.errors import MethodError
from nnsee.models.dense_chain import dense_stages

CONV_TYPES = (nn.Conv1d, nn.Conv2d, nn.Conv3d)


@dataclass(frozen=True)
class Capabilities:
    """``dense_layers``: Linear layers of the dense chain (0: not one); ``hidden_layers``: its hidden Linear names;
    ``conv_layers``: dotted names of the Conv2d layers in registration order; ``relu_modules``: how many
    ``nn.ReLU`` modules; ``graph_relus``: how many ReLU operations run inside ``torch.fx`` graphs (a ``torch.export``
    archive's unflattened modules); ``sequential``: the model is an ``nn.Sequential``."""

    dense_layers: int = 0
    hidden_layers: tuple[str, ...] = ()
    conv_layers: tuple[str, ...] = ()
    relu_modules: int = 0
    sequential: bool = False
    graph_relus: int = 0

    @property
    def relu_rule(self) -> str | None:
        """Why guided backprop and the deconvnet cannot change this model's ReLU backward rule (None: they can)."""
        if self.relu_modules:
            return None
        if self.graph_relus:
            return (f"this model's {self.graph_relus} ReLUs are operations of a torch.export graph, not nn.ReLU "
                    "modules whose backward rule can be changed; adopt it from its code and state dict (--code, "
                    "--weights) for these views")
        return "this model has no nn.ReLU modules whose backward rule can be changed"

    @property
    def dense_chain(self) -> bool:
        return self.dense_layers > 0

    @property
    def linear_first(self) -> bool:
        """A dense chain: the first layer's weight rows are images (templates, incoming weights, contributions)."""
        return self.dense_chain

    @property
    def templates(self) -> bool:
        """Class templates: ``W[k]`` (exact, one layer) or the effective ``(W_L ⋯ W_1)[k]`` of a deeper chain."""
        return self.dense_chain

    @property
    def contributions(self) -> bool:
        """The exact dot-product view of one input: softmax regression, or one hidden layer (units' votes)."""
        return self.dense_layers in (1, 2)

    @property
    def hidden_units(self) -> bool:
        """Hidden units with incoming weights (images) and a bias: the first hidden layer of a dense chain."""
        return self.dense_layers >= 2

    @property
    def one_hidden_layer(self) -> bool:
        """Unit cards are whole: the hidden units' outgoing weights go straight to the classes."""
        return self.dense_layers == 2

    @property
    def last_conv(self) -> str | None:
        return self.conv_layers[-1] if self.conv_layers else None

    def describe(self) -> str:
        """What the model is, for messages: ``"a fully connected chain with 1 hidden layer (fc1)"`` and the like."""
        if self.dense_chain:
            hidden = len(self.hidden_layers)
            names = f" ({', '.join(self.hidden_layers)})" if hidden else ""
            return f"a fully connected chain with {hidden} hidden layer{'s' if hidden != 1 else ''}{names}"
        convs = f" with conv layers {', '.join(self.conv_layers)}" if self.conv_layers else ""
        return f"not a fully connected chain (Flatten, Linear layers, elementwise activations){convs}"

    @property
    def kind(self) -> str:
        """A word for people (``softmax``, ``mlp``, ``cnn`` or ``other``); code asks the fields above."""
        if self.conv_layers:
            return "cnn"
        return {1: "softmax"}.get(self.dense_layers, "mlp" if self.dense_layers > 1 else "other")


def capabilities(model: nn.Module, input_shape: Sequence[int] | None = None) -> Capabilities:
    """Read ``model``'s capabilities (``input_shape`` checks that a dense chain's first layer fits the images)."""
    try:
        stages = dense_stages(model, input_shape, "capabilities")
    except MethodError:
        stages = []
    return Capabilities(
        dense_layers=len(stages),
        hidden_layers=tuple(s.name for s in stages[:-1]),
        conv_layers=tuple(name for name, m in model.named_modules() if isinstance(m, nn.Conv2d)),
        relu_modules=sum(isinstance(m, nn.ReLU) for m in model.modules()),
        sequential=isinstance(model, nn.Sequential),
        graph_relus=sum(_graph_relus(m) for m in model.modules()),
    )


def _graph_relus(module: nn.Module) -> int:
    """ReLU operations in ``module``'s own ``torch.fx`` graph (0 for an ordinary module)."""
    graph = getattr(module, "graph", None)
    if graph is None or not hasattr(graph, "nodes"):
        return 0
    return sum(n.op == "call_function" and str(getattr(n.target, "overloadpacket", n.target)).split(".")[-1]
               in ("relu", "relu_") for n in graph.nodes)
