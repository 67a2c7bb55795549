"""Training on streamed sets (LazyImages read through batches()) gives the in-memory result; unreadable images are
skipped with one warning that names them."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from nnsee.data.imageset import ImageSet, Splits
from nnsee.data.lazy import LazyImages
from nnsee.models import build_model
from nnsee.train import TrainConfig, fit


class ArraySource:
    """A LazyImages source over an array held by the test; positions in ``broken`` cannot be read."""

    def __init__(self, images: np.ndarray, broken: tuple[int, ...] = ()) -> None:
        self.images, self.broken = images, set(broken)
        self.n, self.shape, self.where = len(images), tuple(images.shape[1:]), "test-array"
        self.reads = 0

    def read_into(self, positions: np.ndarray, out: np.ndarray) -> list[tuple[int, str, str]]:
        self.reads += 1
        failed = []
        for i, p in enumerate(positions):
            if int(p) in self.broken:
                failed.append((i, f"img{int(p)}.png", "truncated file"))
            else:
                out[i] = self.images[p]
        return failed


def _splits(n_train: int = 203, n_val: int = 37, seed: int = 0) -> Splits:
    rng = np.random.default_rng(seed)
    means = rng.normal(0, 1, (3, 1, 6, 6)).astype(np.float32)

    def one(n: int) -> ImageSet:
        labels = rng.integers(0, 3, n)
        images = (means[labels] + rng.normal(0, 1.0, (n, 1, 6, 6))).astype(np.float32)
        return ImageSet(images, labels, ["a", "b", "c"], "tiny")

    return Splits(one(n_train), one(n_val), one(29), {"name": "tiny"})


def _streamed(splits: Splits, broken: tuple[int, ...] = (), broken_val: tuple[int, ...] = ()) -> Splits:
    def lazy(s: ImageSet, bad: tuple[int, ...] = ()) -> ImageSet:
        return ImageSet(LazyImages(ArraySource(s.images, bad)), s.labels, list(s.class_names), s.source)

    return Splits(lazy(splits.train, broken), lazy(splits.val, broken_val), lazy(splits.test), splits.spec)


def _train(splits: Splits, **config) -> tuple[dict[str, torch.Tensor], object]:
    torch.manual_seed(0)
    model = build_model("mlp", splits.shape, 3, hidden=[8])
    result = fit(model, splits, TrainConfig(epochs=2, batch_size=32, seed=3, **config), progress=False)
    return {k: v.detach().clone() for k, v in result.model.state_dict().items()}, result


@pytest.mark.parametrize("standardize", ["image", "pixel"])
def test_streamed_training_equals_in_memory(standardize: str) -> None:
    memory = _splits()
    streamed = _streamed(memory)
    assert streamed.train.streamed and not memory.train.streamed
    w_memory, r_memory = _train(memory, standardize=standardize)
    w_streamed, r_streamed = _train(streamed, standardize=standardize)
    for key in w_memory:
        assert torch.allclose(w_memory[key], w_streamed[key], atol=1e-6, rtol=0), key
    assert np.allclose(r_memory.history["train_loss"], r_streamed.history["train_loss"], atol=1e-6)
    assert np.allclose(r_memory.history["val_loss"], r_streamed.history["val_loss"], atol=1e-6)
    assert np.allclose(r_memory.history["val_accuracy"], r_streamed.history["val_accuracy"], atol=1e-6)
    assert r_memory.metrics["test"]["accuracy"] == r_streamed.metrics["test"]["accuracy"]
    assert streamed.train.images.source.reads > 0  # it really read batch by batch


def test_streamed_training_with_worker_processes_equals_in_memory() -> None:
    memory = _splits()
    w_memory, _ = _train(memory)
    w_workers, _ = _train(_streamed(memory), workers=2)
    for key in w_memory:
        assert torch.allclose(w_memory[key], w_workers[key], atol=1e-6, rtol=0), key


def test_unreadable_training_images_are_skipped_with_one_warning_naming_them() -> None:
    streamed = _streamed(_splits(), broken=(5, 77), broken_val=(3,))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _, result = _train(streamed)
    named = [str(w.message) for w in caught if "training image(s) could not be read" in str(w.message)]
    assert len(named) == 1, named  # once, in the first epoch, not again in the second
    assert "img5.png" in named[0] and "img77.png" in named[0] and "truncated file" in named[0]
    assert "2 training image(s)" in named[0]
    (val,) = [str(w.message) for w in caught if "validation image(s) could not be read" in str(w.message)]
    assert "img3.png" in val and "epoch 1" in val
    assert result.status == "completed" and len(result.history["train_loss"]) == 2


def test_a_streamed_run_resumes_with_other_workers_to_the_uninterrupted_result(tmp_path) -> None:
    import json

    from nnsee.train import resume

    memory = _splits()
    w_memory, _ = _train(memory)  # 2 epochs, in memory, never stopped
    torch.manual_seed(0)
    model = build_model("mlp", memory.shape, 3, hidden=[8])
    fit(model, _streamed(memory), TrainConfig(epochs=1, batch_size=32, seed=3), tmp_path / "run", progress=False)
    result = resume(tmp_path / "run", 1, data=_streamed(memory), workers=2, progress=False)
    assert result.epoch == 2
    for key, value in result.model.state_dict().items():
        assert torch.allclose(w_memory[key], value, atol=1e-6, rtol=0), key
    assert json.loads((tmp_path / "run" / "run.json").read_text())["config"]["workers"] == 2


def test_lbfgs_on_a_streamed_set_is_refused_in_one_line() -> None:
    from nnsee.errors import TrainingError

    streamed = _streamed(_splits())
    with pytest.raises(TrainingError, match=r"L-BFGS .* streamed from disk .* --optimizer adam or sgd"):
        _train(streamed, optimizer="lbfgs")
