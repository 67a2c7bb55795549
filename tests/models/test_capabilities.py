"""Model capabilities, read from the modules: stated by hand for each model shape, and what the front ends offer."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from nnsee.methods.attribution.registry import applicable
from nnsee.methods.one_image import view_names
from nnsee.models import build_model
from nnsee.models.capabilities import capabilities

SHAPE = (1, 8, 8)


class OwnNet(nn.Module):  # a user's module: not a Sequential, functional ReLU
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 3, 3)
        self.head = nn.Linear(3 * 6 * 6, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.conv(x)).flatten(1))


def own_chain() -> nn.Sequential:  # a dense chain whose layers are not called fc1/out
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 7), nn.ReLU(), nn.Linear(7, 4))


CASES = {  # model → (dense_layers, hidden_layers, conv_layers, relu_modules, kind, contributions, one_hidden_layer)
    "softmax": (lambda: build_model("softmax", SHAPE, 4), (1, (), (), 0, "softmax", True, False)),
    "mlp": (lambda: build_model("mlp", SHAPE, 4, hidden=[5]), (2, ("fc1",), (), 0, "mlp", True, True)),
    "mlp-2": (lambda: build_model("mlp", SHAPE, 4, hidden=[5, 3], activation="relu"),
              (3, ("fc1", "fc2"), (), 2, "mlp", False, False)),
    "cnn": (lambda: build_model("cnn", SHAPE, 4, channels=[2, 3], kernel=3),
            (0, (), ("conv1", "conv2"), 2, "cnn", False, False)),
    "cnn-hidden-64": (lambda: build_model("cnn", SHAPE, 4, channels=[2], kernel=3, hidden=64),
                      (0, (), ("conv1",), 2, "cnn", False, False)),
    "own module": (OwnNet, (0, (), ("conv",), 0, "cnn", False, False)),
    "own chain": (own_chain, (2, ("1",), (), 1, "mlp", True, True)),
}


@pytest.mark.parametrize("name", list(CASES))
def test_capabilities_as_stated(name: str) -> None:
    build, (dense, hidden, convs, relus, kind, contributions, one_hidden) = CASES[name]
    model = build()
    caps = capabilities(model, SHAPE)
    assert (caps.dense_layers, caps.hidden_layers, caps.conv_layers, caps.relu_modules, caps.kind) == (
        dense, hidden, convs, relus, kind)
    assert (caps.contributions, caps.one_hidden_layer, caps.templates) == (contributions, one_hidden, dense > 0)
    assert caps.last_conv == (convs[-1] if convs else None)
    views = view_names(model, SHAPE)
    assert ("contributions" in views) == contributions
    assert ("grad-cam" in views) == bool(convs) == ("grad-cam" in applicable(model, SHAPE))


def test_a_dense_chain_whose_first_layer_does_not_fit_the_images_is_not_one() -> None:
    assert capabilities(own_chain(), (1, 4, 4)).dense_layers == 0
    assert capabilities(own_chain()).dense_layers == 2  # no shape to check against


def test_the_report_reads_capabilities_not_layer_names(tmp_path) -> None:  # noqa: ANN001
    """The unit cards and class → units of a one-hidden-layer chain whose layers are not called fc1."""
    from tiny import make_splits

    from nnsee.report import build_report
    from nnsee.train import TrainConfig, fit, load_run

    data = make_splits(n_per_class=8, n_classes=4, shape=SHAPE)
    torch.manual_seed(0)
    fit(own_chain(), data, TrainConfig(epochs=1, batch_size=8, lr=0.01), tmp_path / "run", progress=False)
    run = load_run(tmp_path / "run", model=own_chain())  # the loaded run, passed by value
    html = build_report(run, tmp_path / "report", splits=data).read_text(encoding="utf-8")
    assert 'id="units"' in html and 'id="class-units"' in html
    assert "hidden-unit cards:" not in html and "class → units:" not in html
