"""The report's Grad-CAM and occlusion figures on a deep net (issue 13, part 3): Grad-CAM of every stage from one
pass per chunk of test images (not one per image and stage), each figure equal to the method run on its own."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import torch
from tiny import make_splits
from torch import nn
from zoo import resnet18

from nnsee.methods.attribution.grad_cam import grad_cam
from nnsee.methods.attribution.occlusion_paper import occlusion_maps
from nnsee.report.sections import cnn_section
from nnsee.report.sections.common import ReportInput

STAGES = ["conv1", "layer1", "layer2", "layer3"]


class Counter(nn.Module):
    """The identity, counting the real images through it."""

    images = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.images += len(x) if x.device.type != "meta" else 0
        return x


def report_input() -> tuple[ReportInput, Counter]:
    model = resnet18(n_classes=3, width=4)
    counter = Counter()
    model.layer1 = nn.Sequential(counter, model.layer1)
    run = SimpleNamespace(model=model, standardize=lambda a: (np.asarray(a) - 0.5) * 2, class_names=["a", "b", "c"],
                          input_shape=(3, 40, 40))
    return ReportInput(run=run, splits=make_splits(2, 3, (3, 40, 40))), counter


def test_grad_cam_of_every_stage_in_one_pass_equals_each_alone(monkeypatch) -> None:  # noqa: ANN001
    inp, counter = report_input()
    index = np.array([0, 7, 14])
    kept: list[np.ndarray] = []
    monkeypatch.setattr(cnn_section, "over_photo", lambda photo, cam: kept.append(cam) or photo)
    figure = cnn_section._grad_cams(inp, STAGES, index)
    assert counter.images == 3  # one pass for the 4 stages: it was 3 images x 4 stages = 12
    assert [len(r["cells"]) for r in figure["rows"]] == [4, 4, 4]
    x = (inp.splits.test.images[index] - 0.5) * 2
    for j, i in enumerate(index):
        for s, layer in enumerate(STAGES):
            alone = grad_cam(inp.run.model, x[j : j + 1], [int(inp.splits.test.labels[i])], layer=layer)[0]
            top = alone.max()
            np.testing.assert_allclose(kept[4 * j + s], alone / top if top > 0 else alone, rtol=0, atol=2e-5)


def test_occlusion_one_image_at_a_time_equals_all_at_once(monkeypatch) -> None:  # noqa: ANN001
    inp, _ = report_input()
    index = np.array([1, 9])
    figure = cnn_section._occlusion(inp, "layer3", index, large=True)
    x = (inp.splits.test.images[index] - 0.5) * 2
    window, stride = figure["window"], figure["stride"]
    together = occlusion_maps(inp.run.model, x, inp.splits.test.labels[index], window=window, stride=stride,
                              layer="layer3")
    for j, row in enumerate(figure["rows"]):
        assert row["p_min"] == float(together.prob_true[j].min())
        assert row["channel"] == int(together.strongest_channel[j])
        assert row["classes"] == {int(k) for k in np.unique(together.most_probable[j])}
