"""The representation map's numbers against independent references: the features against a float64 numpy forward,
the PCA against scikit-learn's ``PCA``, the Procrustes alignment against a known rotation + scale, the nearest
training images against a float64 brute force, and the stratified sample's counts."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from nnsee.errors import MethodError
from nnsee.methods.representation import (
    align,
    features,
    nearest_training,
    representation_map,
    stratified_sample,
)


def _mlp(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(16, 7), nn.Tanh(), nn.Linear(7, 3))


def _images(n: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, 1, 4, 4)).astype(np.float32)


def _hidden64(model: nn.Sequential, x: np.ndarray) -> np.ndarray:
    """tanh(x W1ᵀ + b1) in float64 numpy: the hidden activation, computed without nnsee."""
    w = model[1].weight.detach().double().numpy()
    b = model[1].bias.detach().double().numpy()
    return np.tanh(x.reshape(len(x), -1).astype(np.float64) @ w.T + b)


def test_features_are_the_last_hidden_activation() -> None:
    model, x = _mlp(), _images(40)
    got = features(model, x, batch_size=16)
    np.testing.assert_allclose(got, _hidden64(model, x), atol=1e-6)


def test_pca_equals_scikit_learn_on_the_same_features() -> None:
    from sklearn.decomposition import PCA

    model, x = _mlp(), _images(90)
    labels = np.arange(90) % 3
    m = representation_map(model, x, labels, n=90)
    assert m.index.tolist() == list(range(90)) and m.layer == "3"
    want = PCA(n_components=2).fit(_hidden64(model, x))
    scores = want.transform(_hidden64(model, x))
    got = m.frames[-1]
    for c in range(2):  # up to each component's sign
        sign = np.sign(got[:, c] @ scores[:, c])
        np.testing.assert_allclose(sign * got[:, c], scores[:, c], atol=1e-6)
    np.testing.assert_allclose(m.explained[-1], want.explained_variance_ratio_, rtol=1e-6)


def test_pca_with_more_features_than_images_equals_scikit_learn() -> None:
    """A CNN's penultimate layer is often wider than the sample: the Gram-matrix route, against scikit-learn."""
    from sklearn.decomposition import PCA

    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 60), nn.Tanh(), nn.Linear(60, 3))
    x = _images(24)
    m = representation_map(model, x, np.arange(24) % 3, n=24)
    w, b = model[1].weight.detach().double().numpy(), model[1].bias.detach().double().numpy()
    feats = np.tanh(x.reshape(24, -1).astype(np.float64) @ w.T + b)
    want = PCA(n_components=2).fit(feats)
    scores = want.transform(feats)
    for c in range(2):
        np.testing.assert_allclose(np.sign(m.frames[-1][:, c] @ scores[:, c]) * m.frames[-1][:, c], scores[:, c],
                                   atol=1e-6)
    np.testing.assert_allclose(m.explained[-1], want.explained_variance_ratio_, rtol=1e-6)


def test_stratified_sample_counts_per_class() -> None:
    labels = np.repeat([0, 1, 2, 3], [50, 30, 5, 40])
    labels = labels[np.random.default_rng(0).permutation(len(labels))]
    index = stratified_sample(labels, n=60, seed=3)
    assert np.bincount(labels[index], minlength=4).tolist() == [15, 15, 5, 15]
    assert np.all(np.diff(index) > 0)  # distinct and increasing
    assert np.array_equal(index, stratified_sample(labels, n=60, seed=3))
    assert not np.array_equal(index, stratified_sample(labels, n=60, seed=4))
    assert np.bincount(labels[stratified_sample(labels, n=2000)], minlength=4).tolist() == [50, 30, 5, 40]


@pytest.mark.parametrize("reflect", [False, True])
def test_alignment_recovers_a_rotation_and_scale(reflect: bool) -> None:
    y = np.random.default_rng(0).normal(size=(50, 2)) * [3, 1]
    t = 0.7
    rotation = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    if reflect:
        rotation = rotation @ np.diag([1, -1])
    x = 0.25 * y @ rotation + [5, -2]  # y seen rotated (reflected), shrunk and moved
    np.testing.assert_allclose(align(x, y), y, atol=1e-10)


def test_each_snapshot_is_aligned_to_the_final_map() -> None:
    """A snapshot whose hidden layer is the final one times 3 (identity activation): its own PCA is the final one
    scaled by 3; aligned, it is the final map."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 7), nn.Identity(), nn.Linear(7, 3))
    state = {k: v.clone() for k, v in model.state_dict().items()}
    state["1.weight"] *= 3
    state["1.bias"] *= 3
    x = _images(60)
    m = representation_map(model, x, np.arange(60) % 3, snapshots={2: state}, n=60)
    assert m.epochs == [2, None] and m.frames.shape == (2, 60, 2)
    np.testing.assert_allclose(m.frames[0], m.frames[1], atol=1e-6)
    assert np.abs(m.frames[1]).max() > 0.1


def test_nearest_training_images_equal_a_float64_brute_force() -> None:
    model = _mlp()
    train, queries = _images(70, seed=2), _images(4, seed=3)
    got = nearest_training(model, queries, train, k=5, batch_size=16)  # 5 batches, merged
    d = np.sqrt(((_hidden64(model, queries)[:, None, :] - _hidden64(model, train)[None, :, :]) ** 2).sum(-1))
    want = np.argsort(d, axis=1)[:, :5]
    assert np.array_equal(got.index, want)
    np.testing.assert_allclose(got.distance, np.take_along_axis(d, want, 1), atol=1e-5)


def test_nearest_training_applies_the_transform_per_batch() -> None:
    model, train, queries = _mlp(), _images(30, seed=2), _images(2, seed=3)
    got = nearest_training(model, queries, train, k=3, batch_size=8, transform=lambda b: b * 2)
    want = nearest_training(model, queries, train * 2, k=3, batch_size=30)
    assert np.array_equal(got.index, want.index)


def test_bad_inputs_are_one_line_errors() -> None:
    conv_only = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten())
    with pytest.raises(MethodError, match="no nn.Linear layer"):
        features(conv_only, _images(3))
    with pytest.raises(MethodError, match="unknown projection 'umap'.*pca, tsne"):
        representation_map(_mlp(), _images(9), np.arange(9) % 3, method="umap")


def test_tsne_is_seeded_and_keeps_classes_apart() -> None:
    """t-SNE (scikit-learn's) of two far-apart clusters: the same seed gives the same map; the clusters stay apart."""
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 16), nn.Identity(), nn.Linear(16, 2))
    with torch.no_grad():
        model[1].weight.copy_(torch.eye(16))
        model[1].bias.zero_()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 1, 4, 4)).astype(np.float32) * 0.1
    labels = np.arange(40) % 2
    x[labels == 1] += 5
    a = representation_map(model, x, labels, method="tsne", n=40)
    b = representation_map(model, x, labels, method="tsne", n=40)
    assert np.array_equal(a.frames, b.frames) and np.isnan(a.explained).all()
    centre = [a.frames[-1][a.labels == k].mean(0) for k in (0, 1)]
    spread = max(np.linalg.norm(a.frames[-1][a.labels == k] - centre[k], axis=1).max() for k in (0, 1))
    assert np.linalg.norm(centre[0] - centre[1]) > 2 * spread
