"""Activation maximization on a small grayscale CNN: the optimized input scores its target far above the rest."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nnsee.methods.activation_max import activation_maximization, total_variation
from nnsee.methods.base import MethodError
from nnsee.models.cnn import CNN


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: one thread is fastest, and the test machine's cores are shared
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def model() -> CNN:
    torch.manual_seed(0)
    return CNN((1, 28, 28), 3, channels=(4, 8)).eval()


def scores(model: CNN, image: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.from_numpy(image)[None])[0].numpy()


@pytest.mark.parametrize("cls", [0, 1, 2])
def test_class_goal(model: CNN, cls: int) -> None:
    start = 0.01 * torch.randn((1, 28, 28), generator=torch.Generator().manual_seed(0))
    before = scores(model, start.numpy())
    image = activation_maximization(model, cls, steps=150)
    after = scores(model, image)
    assert image.shape == (1, 28, 28) and np.isfinite(image).all()
    assert after[cls] > before[cls] + 2.0  # much higher than at the start (the start scores about 0)
    assert after[cls] > np.delete(after, cls).max() + 2.0  # and than the other classes
    assert model.training is False and all(p.grad is None for p in model.parameters())


def test_unit_goal_seed_and_regularizers(model: CNN) -> None:
    def unit(image: np.ndarray) -> float:
        with torch.no_grad():
            return model.conv2(model.pool1(model.relu1(model.conv1(torch.from_numpy(image)[None]))))[0, 3].mean()

    image = activation_maximization(model, ("conv2", 3), steps=100)
    assert unit(image) > unit(np.zeros((1, 28, 28), np.float32)) + 0.3
    np.testing.assert_array_equal(image, activation_maximization(model, ("conv2", 3), steps=100))  # seeded
    smooth = activation_maximization(model, 0, steps=100, tv=1.0)
    rough = activation_maximization(model, 0, steps=100, tv=0.0, jitter=0)
    assert total_variation(torch.from_numpy(smooth)) < total_variation(torch.from_numpy(rough))
    with pytest.raises(MethodError, match="channels"):
        activation_maximization(model, ("conv2", 99), steps=1)
    with pytest.raises(MethodError, match="target class"):
        activation_maximization(model, 7, steps=1)
