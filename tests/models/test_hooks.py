"""The hook module: every helper releases its hooks and gives every training flag back, also when the model raises in
the middle of its forward pass; it is the only place in nnsee that registers hooks or saves and restores the mode."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import nnsee
from nnsee.errors import MethodError
from nnsee.methods.activation_max import activation_maximization
from nnsee.methods.attribution.deconvnet import deconvnet, project_activation
from nnsee.methods.attribution.feature_maps import feature_maps
from nnsee.methods.attribution.grad_cam import grad_cam
from nnsee.methods.attribution.guided_backprop import guided_backprop
from nnsee.methods.attribution.integrated_gradients import integrated_gradients
from nnsee.methods.attribution.occlusion_paper import occlusion_maps
from nnsee.methods.attribution.relu_rules import relu_rule
from nnsee.methods.attribution.saliency import saliency
from nnsee.methods.dataset_views.receptive_field import receptive_field
from nnsee.methods.dataset_views.top_images import auto_batch_size, top_images_per_channel
from nnsee.models.hooks import (
    StopForward,
    capture,
    eval_mode,
    forward_hooks,
    layer_reader,
    on_output,
    replace_output,
    watch_leaves,
    zero_units,
)
from nnsee.train.evaluate import predict_logits


class Boom(nn.Module):
    """Raises once ``armed``: a model that fails in the middle of its forward pass, after the hooked layers."""

    def __init__(self) -> None:
        super().__init__()
        self.armed = True
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if self.armed:
            raise RuntimeError("boom")
        return x


class Skipping(nn.Module):
    """Has a layer ``unused`` that its forward pass never calls."""

    def __init__(self) -> None:
        super().__init__()
        self.used, self.unused = nn.Identity(), nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.used(x)


def failing_cnn() -> nn.Sequential:
    """conv "0" → ReLU → conv "2" → ReLU → flatten → linear → Boom "6", in train mode except its first ReLU and its
    Boom (mixed flags, as a model with a frozen part has)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Conv2d(2, 3, 3), nn.ReLU(), nn.Flatten(),
                          nn.Linear(3 * 4 * 4, 4), Boom()).train()
    model[1].eval()
    model[6].eval()
    return model


def flags(model: nn.Module) -> list[bool]:
    return [m.training for m in model.modules()]


def hooks_left(model: nn.Module) -> int:
    return sum(len(getattr(m, name)) for m in model.modules()
               for name in ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks",
                            "_forward_hooks_always_called", "_forward_hooks_with_kwargs"))


X = torch.randn(2, 1, 8, 8)
SITES: dict[str, Callable[[nn.Module], object]] = {
    "saliency": lambda m: saliency(m, X, 0),
    "guided_backprop": lambda m: guided_backprop(m, X, 0),
    "deconvnet": lambda m: deconvnet(m, X, 0),
    "project_activation": lambda m: project_activation(m, X, "2", 0),
    "grad_cam": lambda m: grad_cam(m, X, 0, layer="2"),
    "feature_maps": lambda m: feature_maps(m, X, "2"),
    "occlusion_maps": lambda m: occlusion_maps(m, X, 0, window=3, layer="2"),
    "integrated_gradients": lambda m: integrated_gradients(m, X, 0, steps=4),
    "activation_maximization": lambda m: activation_maximization(m, ("2", 0), (1, 8, 8), steps=2),
    "top_images_per_channel": lambda m: top_images_per_channel(m, X, "2", k=1),
    "auto_batch_size": lambda m: auto_batch_size(m, X, "2"),
    "receptive_field": lambda m: receptive_field(m, "2", (1, 8, 8)),
    "predict_logits": lambda m: predict_logits(m, X.numpy()),
}


@pytest.mark.parametrize("name", list(SITES))
def test_every_site_releases_hooks_and_restores_every_flag_when_the_model_raises(name: str) -> None:
    model = failing_cnn()
    before = flags(model)
    with pytest.raises(RuntimeError, match="boom"):
        SITES[name](model)
    assert hooks_left(model) == 0
    assert flags(model) == before  # the frozen ReLU stays in eval mode, the rest goes back to training
    assert torch.is_grad_enabled()


def test_every_site_leaves_the_model_as_it_was_when_it_succeeds() -> None:
    for name, run in SITES.items():
        model = failing_cnn()
        model[6].armed = False
        before = flags(model)
        run(model)
        assert hooks_left(model) == 0 and flags(model) == before, name


HELPERS: dict[str, Callable[[nn.Module], object]] = {
    "eval_mode": lambda m: eval_mode(m),
    "eval_mode grad": lambda m: eval_mode(m, grad=True),
    "capture": lambda m: capture(m, "2"),
    "capture clone": lambda m: capture(m, "2", detach=False, clone=True),
    "on_output": lambda m: on_output(m, "2", lambda out: None),
    "replace_output": lambda m: replace_output(m, "2", lambda out: out * 2),
    "zero_units": lambda m: zero_units(m, "5", [0]),
    "layer_reader": lambda m: layer_reader(m, "2"),
    "watch_leaves": lambda m: watch_leaves(m, lambda *_: None),
    "forward_hooks pre": lambda m: forward_hooks(m.modules(), lambda *_: None, pre=True),
    "forward_hooks always": lambda m: forward_hooks(m.modules(), lambda *_: None, always_call=True),
    "relu_rule": lambda m: relu_rule(m, "guided"),
}


@pytest.mark.parametrize("name", list(HELPERS))
def test_each_helper_releases_when_the_block_raises(name: str) -> None:
    model = failing_cnn()
    before = flags(model)
    with pytest.raises(RuntimeError, match="boom"), HELPERS[name](model) as got:
        assert hooks_left(model) > 0 or name.startswith("eval_mode")
        if name == "layer_reader":
            got(X)
        else:
            model(X)
    assert hooks_left(model) == 0 and flags(model) == before


def test_eval_mode_sets_eval_and_the_grad_mode_then_restores_both() -> None:
    model = failing_cnn()
    with eval_mode(model) as same:
        assert same is model and not any(flags(model)) and not torch.is_grad_enabled()
    with torch.no_grad(), eval_mode(model, grad=True):
        assert not any(flags(model)) and torch.is_grad_enabled()
    assert flags(model) == [True, True, False, True, True, True, True, False] and torch.is_grad_enabled()


def test_layer_reader_stops_after_the_last_call_and_catches_only_its_stop() -> None:
    model = failing_cnn()
    model[6].armed = False
    with eval_mode(model), layer_reader(model, "2") as read:
        first = read(X)
        assert model[6].calls == 1  # the first read runs the whole pass, counting the layer's calls
        again = read(X)
        assert model[6].calls == 1  # later reads stop right after the layer: nothing after it runs
    assert torch.equal(first, again) and torch.equal(first, model[:3](X).detach())
    assert hooks_left(model) == 0
    skipping = Skipping()
    with pytest.raises(MethodError, match="'unused' was not called"), layer_reader(skipping, "unused") as read:
        read(X)
    assert hooks_left(skipping) == 0
    assert not issubclass(StopForward, MethodError)  # a stop is never mistaken for a refusal, nor caught as one


def test_capture_with_clone_keeps_the_output_from_later_in_place_ops() -> None:
    model = nn.Sequential(nn.Linear(3, 3, bias=False), nn.ReLU(inplace=True))
    x = torch.tensor([[-1.0, 0.5, 2.0]])
    with torch.no_grad():
        model[0].weight.copy_(torch.eye(3))
    with torch.no_grad():
        want = model[0](x)
        with capture(model, "0", clone=True) as kept:
            model(x)
        with capture(model, "0") as shared:
            model(x)
    assert torch.equal(kept.output, want) and (want < 0).any()
    assert not torch.equal(shared.output, want)  # without the clone, the in-place ReLU changed what was kept


def test_one_module_registers_hooks_and_saves_the_training_flag() -> None:
    """Hook registration and train/eval save-restore live only in nnsee/models/hooks.py."""
    root = Path(nnsee.__file__).parent
    pattern = re.compile(r"register_\w*hook|\.training\b|\bwas_training\b")
    found = [f"{path.relative_to(root)}:{i}" for path in sorted(root.rglob("*.py")) if path.name != "hooks.py"
             for i, line in enumerate(path.read_text().splitlines(), 1) if pattern.search(line)]
    assert found == []


def test_zero_units_acts_on_a_clone() -> None:
    model = nn.Sequential(nn.Linear(2, 3))
    with torch.no_grad(), capture(model, "0") as seen, zero_units(model, "0", [1]):
        out = model(torch.ones(1, 2))
    assert out[0, 1] == 0 and seen.output[0, 1] != 0
    assert np.isfinite(out.numpy()).all()
