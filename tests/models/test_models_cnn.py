"""The CNN in the registry: shapes for 1 and 3 channels and 25-128 px, clear errors, a round trip by spec."""

from __future__ import annotations

import pytest
import torch

from nnsee.errors import TrainingError
from nnsee.models import build_from_spec, build_model, model_spec


@pytest.mark.parametrize(("shape", "channels"), [((1, 28, 28), [16, 32]), ((3, 25, 25), [8, 16, 8]),
                                                  ((3, 128, 128), [4, 8])])
def test_cnn_maps_images_to_class_scores(shape: tuple[int, int, int], channels: list[int]) -> None:
    model = build_model("cnn", shape, 6, channels=channels)
    assert model(torch.zeros(2, *shape)).shape == (2, 6)
    names = [name for name, _ in model.named_children()]
    assert names[:3] == ["conv1", "relu1", "pool1"] and names[-1] == "out"
    rebuilt = build_from_spec(model_spec(model))
    assert [p.shape for p in rebuilt.parameters()] == [p.shape for p in model.parameters()]


@pytest.mark.parametrize(("shape", "options", "match"), [
    ((2, 28, 28), {}, "1 or 3 input channels"),
    ((1, 28, 28), {"kernel": 4}, "odd"),
    ((1, 6, 6), {"channels": [4, 4, 4]}, "at least 8 px"),
    ((1, 28, 28), {"channels": [0]}, "1 to 1024"),
])
def test_cnn_refuses_impossible_shapes(shape: tuple[int, int, int], options: dict, match: str) -> None:
    with pytest.raises(TrainingError, match=match):
        build_model("cnn", shape, 3, **options)
