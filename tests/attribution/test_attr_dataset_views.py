"""Dataset views: streaming top-k per channel, receptive fields and crops, projections, evolution over training."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from attribution.zf_models import random_cnn
from torch import nn
from torch.overrides import TorchFunctionMode

from nnsee.methods.base import MethodError
from nnsee.methods.dataset_views.top_activations import auto_batch_size, top_activations


def reference_topk(acts: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Full sort: per channel, images by descending max, lower index first on ties; first argmax position."""
    n, f = acts.shape[:2]
    flat = acts.reshape(n, f, -1)
    scores, where = flat.max(axis=2), flat.argmax(axis=2)
    idx = np.stack([np.lexsort((np.arange(n), -scores[:, c]))[:k] for c in range(f)])
    vals = np.take_along_axis(scores.T, idx, 1)
    w = acts.shape[3]
    pos = np.take_along_axis(where.T, idx, 1)
    return vals, idx, np.stack([pos // w, pos % w], axis=-1)


@pytest.mark.parametrize("batch_size", [1, 7, 64, 500])
def test_streaming_topk_equals_full_sort_with_ties(batch_size: int) -> None:
    rng = np.random.default_rng(batch_size)
    acts = rng.integers(0, 4, size=(173, 5, 3, 4)).astype(np.float32)  # few values: many ties everywhere
    model = nn.Sequential(nn.Identity())
    got = top_activations(model, acts, "0", k=9, batch_size=batch_size)
    vals, idx, pos = reference_topk(acts, 9)
    np.testing.assert_array_equal(got.values, vals)
    np.testing.assert_array_equal(got.image_index, idx)
    np.testing.assert_array_equal(got.position, pos)
    assert got.n_images == 173 and got.map_shape == (3, 4) and got.k == 9


def test_generator_input_flat_layer_small_n_and_errors() -> None:
    rng = np.random.default_rng(0)
    images = rng.normal(size=(40, 1, 2, 3)).astype(np.float32)
    acts = images.reshape(40, 6)
    model = nn.Sequential(nn.Flatten())  # a flat layer: the score is the unit's value, no position
    pairs = ((images[s : s + 16], np.zeros(16)) for s in range(0, 40, 16))  # (images, labels) like a DataLoader
    got = top_activations(model, pairs, "0", k=3)
    np.testing.assert_array_equal(got.image_index, np.argsort(-acts, axis=0, kind="stable")[:3].T)
    assert (got.position == 0).all()
    assert top_activations(model, images[:2], "0", k=9).k == 2
    with pytest.raises(MethodError, match="no images"):
        top_activations(model, iter([]), "0")
    with pytest.raises(MethodError, match="no layer"):
        top_activations(model, images, "conv9")


class _LargestTensor(TorchFunctionMode):
    def __init__(self) -> None:
        super().__init__()
        self.largest = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN204
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, tuple) else (out,):
            if isinstance(t, torch.Tensor):
                self.largest = max(self.largest, t.numel())
        return out


def test_memory_is_independent_of_the_number_of_images() -> None:
    model = random_cnn(1, size=12)
    n, batch = 600, 50
    rng = np.random.default_rng(1)
    consumed = []

    def batches():
        for s in range(0, n, batch):
            consumed.append(s)
            yield rng.normal(size=(batch, 1, 12, 12)).astype(np.float32)

    with _LargestTensor() as watch:
        got = top_activations(model, batches, "conv2", k=9)
    all_acts = n * 6 * 6 * 6  # what keeping every conv2 activation would take
    per_batch = batch * 4 * 12 * 12  # the largest intermediate of one batch (conv1's output)
    assert got.n_images == n and len(consumed) == n // batch
    assert watch.largest <= per_batch < all_acts / 2
    assert 32 <= auto_batch_size(model, torch.zeros(1, 1, 12, 12), "conv2") <= 1024
