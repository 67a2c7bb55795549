"""Dataset views: streaming top-k per channel, receptive fields and crops, projections, evolution over training."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from attribution.zf_models import random_cnn
from tiny import make_splits
from torch import nn
from torch.overrides import TorchFunctionMode

from nnsee.methods.attribution.deconvnet import project_activation
from nnsee.methods.base import MethodError
from nnsee.methods.dataset_views.feature_evolution import features_over_training
from nnsee.methods.dataset_views.projections import top9_projections
from nnsee.methods.dataset_views.receptive_field import ReceptiveField, crop, receptive_field
from nnsee.methods.dataset_views.top_images import auto_batch_size, top_images_per_channel
from nnsee.models.cnn import CNN
from nnsee.train.config import TrainConfig
from nnsee.train.fit import fit
from nnsee.train.run import load_run


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
    got = top_images_per_channel(model, acts, "0", k=9, batch_size=batch_size)
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
    got = top_images_per_channel(model, pairs, "0", k=3)
    np.testing.assert_array_equal(got.image_index, np.argsort(-acts, axis=0, kind="stable")[:3].T)
    assert (got.position == 0).all()
    assert top_images_per_channel(model, images[:2], "0", k=9).k == 2
    with pytest.raises(MethodError, match="no images"):
        top_images_per_channel(model, iter([]), "0")
    with pytest.raises(MethodError, match="no layer"):
        top_images_per_channel(model, images, "conv9")


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
        got = top_images_per_channel(model, batches, "conv2", k=9)
    all_acts = n * 6 * 6 * 6  # what keeping every conv2 activation would take
    per_batch = batch * 4 * 12 * 12  # the largest intermediate of one batch (conv1's output)
    assert got.n_images == n and len(consumed) == n // batch
    assert watch.largest <= per_batch < all_acts / 2
    assert 32 <= auto_batch_size(model, torch.zeros(1, 1, 12, 12), "conv2") <= 1024


def test_receptive_field_of_cnn_conv2_analytic_and_gradient_support() -> None:
    # conv1 5×5 pad 2: 5 px, offset −2; pool 2×2 stride 2: 6 px, stride 2; conv2 5×5 pad 2: 6 + 4·2 = 14 px,
    # offset −2 − 2·2 = −6. So conv2 unit (y, x) sees rows 2y − 6 … 2y + 7.
    model = CNN((1, 28, 28), 10)
    rf = receptive_field(model, "conv2", (1, 28, 28))
    assert rf == ReceptiveField((14, 14), (2, 2), (-6, -6))
    assert receptive_field(model, "pool2", (1, 28, 28)) == ReceptiveField((16, 16), (4, 4), (-6, -6))
    # The union of the gradient supports of unit (5, 6) over many random inputs fills exactly its window.
    x = torch.randn(64, 1, 28, 28)
    grads = project_activation(model, x, "conv2", 3, position=(5, 6), rule="deconvnet")
    rows, cols = np.nonzero(np.abs(grads).sum(axis=(0, 1)))
    top, left, bottom, right = rf.window((5, 6))
    assert (rows.min(), cols.min(), rows.max() + 1, cols.max() + 1) == (top, left, bottom, right) == (4, 6, 18, 20)
    with pytest.raises(MethodError, match="Flatten"):
        receptive_field(model, "out", (1, 28, 28))


def test_crop_pads_at_the_borders() -> None:
    image = np.arange(2 * 6 * 6, dtype=np.float32).reshape(2, 6, 6) + 1
    rf = ReceptiveField((4, 4), (2, 2), (-2, -2))
    np.testing.assert_array_equal(crop(image, (2, 2), rf), image[:, 2:6, 2:6])
    corner = crop(image, (0, 0), rf, fill=-1)
    assert corner.shape == (2, 4, 4)
    np.testing.assert_array_equal(corner[:, 2:, 2:], image[:, :2, :2])
    assert (corner[:, :2, :] == -1).all() and (corner[:, :, :2] == -1).all()


def test_top9_projections_match_single_projections_and_crops() -> None:
    model = random_cnn(1, size=12, seed=4)
    images = np.random.default_rng(2).normal(size=(30, 1, 12, 12)).astype(np.float32)
    top = top_images_per_channel(model, images, "conv2", k=3)
    proj = top9_projections(model, images, top, batch_size=7)
    f = top.values.shape[0]
    assert proj.projections.shape == (f, 3, 1, 12, 12) and proj.image_crops.shape == (f, 3, 1, 8, 8)
    for c, j in [(0, 0), (f - 1, 2), (2, 1)]:
        i, pos = top.image_index[c, j], top.position[c, j]
        single = project_activation(model, images[i : i + 1], "conv2", c, position=tuple(pos))[0]
        np.testing.assert_allclose(proj.projections[c, j], single, atol=1e-6)
        np.testing.assert_array_equal(proj.image_crops[c, j], crop(images[i], pos, proj.rf))
        np.testing.assert_allclose(proj.projection_crops[c, j], crop(single, pos, proj.rf), atol=1e-6)
    # a callable stream gives the same, by streaming the images again
    again = top9_projections(model, lambda: (images[s : s + 8] for s in range(0, 30, 8)), top)
    np.testing.assert_allclose(again.projections, proj.projections, rtol=0, atol=1e-6)  # other batches: rounding
    with pytest.raises(MethodError, match="one-shot"):
        top9_projections(model, iter([images]), top)


def test_features_over_training(tmp_path) -> None:  # noqa: ANN001
    data = make_splits(n_per_class=4, n_classes=3, shape=(1, 12, 12))
    torch.manual_seed(0)
    model = CNN((1, 12, 12), 3, channels=(3, 4), kernel=3)
    fit(model, data, TrainConfig(epochs=2, batch_size=4, snapshots=[0, 2]), tmp_path, progress=False)
    run = load_run(tmp_path)
    snaps = {epoch: run.snapshot_state(epoch) for epoch in run.snapshot_epochs}
    transform = run.standardizer.transform
    views = features_over_training(run.model, snaps, data.train.images, "conv2", k=4, transform=transform)
    assert list(views) == [0, 2]
    assert views[0].topk.values.shape == (4, 4) and views[2].projections.projections.shape == (4, 4, 1, 12, 12)
    assert not np.array_equal(views[0].topk.values, views[2].topk.values)  # the weights changed
    last = top_images_per_channel(run.model, data.train.images, "conv2", k=4, transform=transform)
    np.testing.assert_allclose(views[2].topk.values, last.values, rtol=1e-5)
    only = features_over_training(run.model, {2: snaps[2]}, data.train.images, "conv2", k=2, projections=False,
                                  transform=transform)
    assert list(only) == [2] and only[2].projections is None


def test_top9_projections_of_a_branching_model_show_whole_images() -> None:
    """A ResNet's residual adds have no chain receptive field: the top-9 crops are the whole images (not refused),
    and each projection equals project_activation of its unit on its own image."""
    from zoo import resnet18

    from nnsee.methods.dataset_views.top_images import top_images_per_channel

    model = resnet18(n_classes=3, width=8).eval()
    x = np.random.default_rng(0).random((12, 3, 32, 32)).astype(np.float32)
    topk = top_images_per_channel(model, x, "layer4.1.conv2", k=9)
    result = top9_projections(model, x, topk, "layer4.1.conv2")
    assert result.rf.size == (32, 32) and result.image_crops.shape[-3:] == (3, 32, 32)
    np.testing.assert_array_equal(result.image_crops[2, 0], x[topk.image_index[2, 0]])
    one = project_activation(model, x[topk.image_index[2, 0]][None], "layer4.1.conv2", np.array([2]),
                             topk.position[2, 0][None])
    np.testing.assert_allclose(result.projection_crops[2, 0], one[0], rtol=1e-5, atol=1e-7)
