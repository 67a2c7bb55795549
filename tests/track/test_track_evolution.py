"""The evolution views on a model nnsee did not build: a ResNet-18-shaped model (BatchNorm, residual adds) trained in
a plain loop and tracked. The report's evolution section shows its first convolution's filters in colour at each
snapshot; the CNN section's feature evolution and the overview's learning curves work too."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
import torch
from photos import photo_folder
from PIL import Image
from torch import nn
from zoo import resnet18

import nnsee
from nnsee.data import load_data
from nnsee.methods import templates_over_training
from nnsee.report.sections.cnn_section import _evolution
from nnsee.report.sections.common import ReportInput
from nnsee.report.sections.evolution_section import evolution_section
from nnsee.report.sections.overview import overview


@pytest.fixture(scope="module")
def tracked(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("resnet")
    photo_folder(root / "photos", per_class=8, side=32)
    model = resnet18(n_classes=3, width=8).train()
    tracker = nnsee.track(model, out=root / "run", input_shape=(3, 32, 32), normalize="imagenet",
                          data=str(root / "photos"), snapshots=[0, 1, 2])
    splits = load_data(str(root / "photos"), size=32, grayscale=False)
    x, y = torch.tensor(tracker.run.standardize(splits.train.images)), torch.tensor(splits.train.labels)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    filters = {0: model.conv1.weight.detach().clone()}
    for epoch in (1, 2):
        model.train()
        loss = nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        tracker.epoch(epoch, train_loss=loss, val_loss=loss.item() * 1.1, train_acc=0.5, val_acc=0.4)
        filters[epoch] = model.conv1.weight.detach().clone()
    return tracker.close(), splits, filters


def test_weight_evolution_shows_the_first_convolutions_filters(tracked) -> None:
    run, splits, filters = tracked
    snapshots = {e: run.snapshot_state(e) for e in run.snapshot_epochs}
    images = templates_over_training(run.model, snapshots, run.input_shape, n_units=16)
    assert sorted(images) == [0, 1, 2]
    for epoch, w in images.items():  # conv1's weights as the loop left them: its 8 filters (of up to 16 shown)
        np.testing.assert_array_equal(w, filters[epoch][:16].numpy())
    assert not np.array_equal(images[0], images[2])  # they moved

    inp = ReportInput(run, splits)
    section = evolution_section(inp)
    assert section is not None and not inp.notes
    assert [s["epoch"] for s in section["strips"]] == [0, 1, 2]
    assert "first 8 filters of the first convolution, conv1 (3×7×7 each)" in section["what"]
    png = base64.b64decode(section["strips"][2]["uri"].split(",", 1)[1])
    strip = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.int16)
    assert np.abs(strip[..., 0] - strip[..., 1]).max() > 30  # colour filters, not grey
    assert section["gif_bytes"][:6] == b"GIF89a"
    with Image.open(io.BytesIO(section["gif_bytes"])) as gif:
        assert gif.n_frames == 3


def test_feature_evolution_and_learning_curves_on_the_tracked_resnet(tracked) -> None:
    run, splits, _ = tracked
    inp = ReportInput(run, splits)
    features = _evolution(inp, "layer4.1.conv2")
    assert features is not None and features["epochs"] == [0, 1, 2] and len(features["rows"]) == 8
    curves = overview(inp)["curves"]
    assert curves is not None and "validation" in curves[0] and "train" in curves[1]
    assert run.history["epoch"] == [1, 2]


class _LaterConvFirst(nn.Module):
    """Its first registered convolution is not its input layer (registered out of forward order)."""

    def __init__(self) -> None:
        super().__init__()
        self.head = nn.Conv2d(4, 10, 14)
        self.stem = nn.Conv2d(1, 4, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.stem(x))).flatten(1)


def test_a_first_registered_convolution_that_is_not_the_input_layer_is_said(tmp_path) -> None:
    model = _LaterConvFirst()
    tracker = nnsee.track(model, out=tmp_path / "run", input_shape=(1, 28, 28), normalize="none", data="digits",
                          snapshots=[0, 1])
    tracker.epoch(1, train_loss=1.0)
    run = tracker.close()
    inp = ReportInput(run, load_data("digits"))
    assert evolution_section(inp) is None
    assert inp.notes == ["evolution: the first convolution registered in the model, head, takes 4 channels, not the "
                         "image's 1, so its filters are not images (it is not the input layer)"]


def test_the_report_filters_are_those_of_the_convolution_that_reads_the_image() -> None:
    """The CNN section's first-layer filters come from the first Conv2d taking the image's channels (here 'stem',
    registered after 'head'); a model with none gets no filters (and a line saying why) instead of a ValueError from
    the tile renderer ('weights must have shape (C, H, W) with C = 1 or 3, got (4, 14, 14)')."""
    from nnsee.report.sections.cnn_section import _filters

    model = _LaterConvFirst()
    filters = _filters(model, 1)
    assert filters is not None and filters["count"] == 4 and filters["shape"] == [1, 3, 3]
    assert _filters(nn.Sequential(nn.Conv2d(4, 2, 3)), 1) is None
