"""The representation map: what the last hidden layer makes of the test set, projected to 2-D and watched over
training, and the nearest training images of any image in the same feature space.

* **Features**: the *input of the model's last* ``nn.Linear`` (flattened), i.e. what the classifier reads: for an
  MLP the last hidden activation ``h = act(W_L-1 … act(W_1 x + b_1) …)``, for a CNN or any model ending in a Linear
  the penultimate features. The layer's input at its last call in the forward pass is kept.
* **Sample**: :func:`stratified_sample` takes the same number of images from every class, ``m = max(1, n // K)``
  (``K`` classes; a class with fewer images gives all it has), uniformly at random without replacement with
  ``numpy.random.default_rng(seed)``, returned in increasing order (so a streamed set is read forward).
* **Projections**: PCA (the first two components, as scikit-learn's ``PCA`` computes them, in numpy) and t-SNE
  (scikit-learn's ``TSNE``, ``init="pca"``, seeded, perplexity ``min(30, (N - 1) / 3)``).
* **Alignment** across snapshots: each snapshot's projection ``X`` is fitted on its own features, then mapped onto
  the final one ``Y`` by orthogonal Procrustes with scaling: with centred ``X̄, Ȳ``, ``R = argmin_{RᵀR=I} ‖X̄R − Ȳ‖``
  (``U Vᵀ`` from the SVD ``X̄ᵀȲ = U Σ Vᵀ``; reflections allowed, so a component's flipped sign is undone) and
  ``s = tr Σ / ‖X̄‖²``; the aligned points are ``s X̄ R + mean(Y)``.
* **Nearest training images**: Euclidean distance ``‖f(x) − f(t)‖₂`` between the features, computed in float64,
  over the training images in batches (a running top-k: memory bounded by the batch, a streamed set read once).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from nnsee.data.lazy import LazyImages
from nnsee.methods.base import at_each_snapshot, batches, evaluating, linear_layers, param_of
from nnsee.models.chunking import FORWARD_ELEMENTS, cap_for, chunk_key, chunks
from nnsee.models.hooks import forward_hooks, get_module

Images = np.ndarray | LazyImages
Transform = Callable[[np.ndarray], np.ndarray]
Snapshots = Mapping[int, Mapping[str, torch.Tensor]]
METHODS = ("pca", "tsne")
SAMPLE = 2000  # images on the map at most (an equal share per class)


def feature_layer(model: nn.Module) -> str:
    """The dotted name of the model's last ``nn.Linear`` (in registration order): its input is the feature."""
    from nnsee.errors import MethodError

    layers = linear_layers(model)
    if not layers:
        raise MethodError(f"the representation map reads the input of the model's last nn.Linear layer (the "
                          f"classifier's features), and this {type(model).__name__} has no nn.Linear layer")
    return layers[-1][0]


def features(model: nn.Module, images: Images, *, transform: Transform | None = None,
             batch_size: int | None = None, layer: str | None = None) -> np.ndarray:
    """(N, D) float32: the input of ``layer`` (default :func:`feature_layer`) at its last call, flattened, for every
    image of ``images`` (read and ``transform``-ed chunk by chunk: ``batch_size`` images, default the shared
    tuner's forward chunks, :mod:`nnsee.models.chunking`)."""
    layer = layer or feature_layer(model)
    module = get_module(model, layer)
    device, dtype = param_of(model)
    seen: dict[str, torch.Tensor] = {}

    def keep(_m: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
        seen["x"] = inputs[0]

    shape = tuple(images.shape[1:])
    key = chunk_key(model, "forward", shape, dtype, device)
    out: np.ndarray | None = None
    with evaluating(model), forward_hooks([module], keep, pre=True):
        for start, stop in chunks(len(images), key, cap_for(shape, FORWARD_ELEMENTS), batch_size, device):
            chunk = np.asarray(images[start:stop])
            if transform is not None:
                chunk = transform(chunk)
            seen.clear()
            model(torch.as_tensor(chunk).to(device=device, dtype=dtype))
            f = seen["x"].reshape(len(chunk), -1).float().cpu().numpy()
            if out is None:
                out = np.empty((len(images), f.shape[1]), dtype=np.float32)
            out[start:stop] = f
    return out if out is not None else np.zeros((0, 0), dtype=np.float32)


def stratified_sample(labels: np.ndarray, n: int = SAMPLE, seed: int = 0) -> np.ndarray:
    """Sorted positions of ``max(1, n // K)`` images of each of the ``K`` classes present (all of a smaller class),
    drawn at random without replacement (``default_rng(seed)``)."""
    labels = np.asarray(labels)
    classes = np.unique(labels)
    if not len(classes):
        return np.zeros(0, dtype=np.int64)
    share = max(1, n // len(classes))
    rng = np.random.default_rng(seed)
    picked = [rng.choice(np.flatnonzero(labels == k), size=min(share, int((labels == k).sum())), replace=False)
              for k in classes]
    return np.sort(np.concatenate(picked)).astype(np.int64)


def pca_2d(feats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The scores (N, 2) on the first two principal components and their explained variance ratios (2,).

    PCA as scikit-learn's ``PCA(2)`` computes it, in float64 numpy (importing scikit-learn costs more than this
    view's whole time in the report): the centred features ``X̄ = X − mean``, the top eigenvectors ``v`` of
    ``X̄ᵀX̄`` (from those ``u`` of the Gram matrix ``X̄X̄ᵀ``, ``v = X̄ᵀu / σ``, when there are more features than
    images), each signed so that its largest ``|entry|`` is positive (scikit-learn's ``svd_flip``); scores ``X̄v``;
    ratios ``λ / Σλ``.
    """
    x = np.asarray(feats, dtype=np.float64)
    xc = x - x.mean(0) if len(x) else x
    points, ratio = np.zeros((len(x), 2)), np.zeros(2)
    if len(x) < 2 or not x.shape[1]:
        return points, ratio
    gram = x.shape[1] > len(x)  # more features than images: the (N, N) Gram matrix is the smaller one
    eigvals, eigvecs = np.linalg.eigh(xc @ xc.T if gram else xc.T @ xc)
    variances, vecs = np.maximum(eigvals[::-1], 0), eigvecs[:, ::-1]
    total = float(variances.sum())
    k = min(2, vecs.shape[1])
    comps = (xc.T @ vecs[:, :k] / np.sqrt(np.maximum(variances[:k], 1e-300))).T if gram else vecs[:, :k].T
    comps = comps * np.sign(comps[np.arange(k), np.abs(comps).argmax(1)])[:, None]
    points[:, :k] = xc @ comps.T
    ratio[:k] = variances[:k] / total if total > 0 else 0
    return points, ratio


def tsne_2d(feats: np.ndarray, seed: int = 0) -> np.ndarray:
    """t-SNE (N, 2) of the features: scikit-learn's ``TSNE(init="pca", random_state=seed)``, perplexity
    ``min(30, (N - 1) / 3)``."""
    from sklearn.manifold import TSNE

    x = np.asarray(feats, dtype=np.float64)
    if len(x) < 4:
        return pca_2d(x)[0]
    return TSNE(n_components=2, init="pca", random_state=seed, perplexity=min(30.0, (len(x) - 1) / 3)).fit_transform(x)


def align(points: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """``points`` mapped onto ``reference`` by orthogonal Procrustes with scaling: ``s (X − x̄) R + ȳ``."""
    from scipy.linalg import orthogonal_procrustes

    x, y = np.asarray(points, dtype=np.float64), np.asarray(reference, dtype=np.float64)
    xc, yc = x - x.mean(0), y - y.mean(0)
    norm = float((xc**2).sum())
    if norm == 0:
        return np.broadcast_to(y.mean(0), x.shape).copy()
    rotation, trace = orthogonal_procrustes(xc, yc)
    return (trace / norm) * xc @ rotation + y.mean(0)


def project(feats: np.ndarray, method: str, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(points (N, 2), explained variance ratios (2,); NaN for t-SNE)`` by ``method`` (``pca`` or ``tsne``)."""
    if method == "pca":
        return pca_2d(feats)
    if method == "tsne":
        return tsne_2d(feats, seed), np.full(2, np.nan)
    from nnsee.errors import MethodError

    raise MethodError(f"unknown projection {method!r}: use one of {', '.join(METHODS)}")


@dataclass(frozen=True)
class RepresentationMap:
    """The sampled test images' positions on the map. ``frames[i]`` (N, 2) is the map at ``epochs[i]`` (None: the
    model's own, final weights, always last), each aligned to the final frame; ``explained[i]`` the two
    components' explained variance ratios (PCA; NaN for t-SNE)."""

    method: str
    layer: str
    index: np.ndarray
    labels: np.ndarray
    epochs: list[int | None]
    frames: np.ndarray
    explained: np.ndarray


class Picked:
    """``images[index]`` read slice by slice when sliced (never all at once: 2,000 images of 3x224x224 are 1.2 GB)."""

    def __init__(self, images: Images, index: np.ndarray) -> None:
        self.images, self.index = images, index
        self.shape = (len(index), *images.shape[1:])

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, key: slice) -> np.ndarray:
        return np.asarray(self.images[self.index[key]])


@dataclass(frozen=True)
class SampleFeatures:
    """The sampled images' features: ``feats[i]`` (N, D) with the weights of ``epochs[i]`` (None: the model's own,
    last)."""

    layer: str
    index: np.ndarray
    labels: np.ndarray
    epochs: list[int | None]
    feats: list[np.ndarray]


def sample_features(model: nn.Module, images: Images, labels: np.ndarray, *, snapshots: Snapshots | None = None,
                    n: int = SAMPLE, seed: int = 0, transform: Transform | None = None,
                    batch_size: int | None = None) -> SampleFeatures:
    """The features of a stratified sample of ``n`` images at each snapshot ``{epoch: state_dict}`` and with the
    model's weights (the part that runs the model; ``model`` is not modified)."""
    index = stratified_sample(labels, n, seed)
    x = Picked(images, index)
    layer = feature_layer(model)
    epochs: list[int | None] = []
    feats = []
    for epoch, work in at_each_snapshot(model, snapshots or {}):
        epochs.append(epoch)
        feats.append(features(work, x, transform=transform, batch_size=batch_size, layer=layer))
    feats.append(features(model, x, transform=transform, batch_size=batch_size, layer=layer))
    return SampleFeatures(layer, index, np.asarray(labels)[index], [*epochs, None], feats)


def project_frames(sample: SampleFeatures, method: str = "pca", seed: int = 0) -> RepresentationMap:
    """Each frame's features projected by ``method`` on their own, then aligned to the last (final) frame."""
    final, final_ratio = project(sample.feats[-1], method, seed)
    frames, ratios = [], []
    for f in sample.feats[:-1]:
        points, ratio = project(f, method, seed)
        frames.append(align(points, final))
        ratios.append(ratio)
    return RepresentationMap(method, sample.layer, sample.index, sample.labels, sample.epochs,
                             np.stack([*frames, final]), np.stack([*ratios, final_ratio]))


def representation_map(model: nn.Module, images: Images, labels: np.ndarray, *, method: str = "pca",
                       snapshots: Snapshots | None = None, n: int = SAMPLE, seed: int = 0,
                       transform: Transform | None = None, batch_size: int | None = None) -> RepresentationMap:
    """The map of a stratified sample of ``n`` images: projected at each snapshot ``{epoch: state_dict}`` (each
    aligned to the final frame) and with the model's weights (the final frame). ``model`` is not modified."""
    if method not in METHODS:
        project(np.zeros((0, 2)), method)  # the one-line error, before any work
    sample = sample_features(model, images, labels, snapshots=snapshots, n=n, seed=seed, transform=transform,
                             batch_size=batch_size)
    return project_frames(sample, method, seed)


@dataclass(frozen=True)
class Neighbours:
    """For each query image (row): the positions of its ``k`` nearest images (nearest first) and their Euclidean
    feature distances."""

    index: np.ndarray
    distance: np.ndarray


def nearest_in(bank: np.ndarray, queries: np.ndarray, k: int, offset: int = 0,
               best: Neighbours | None = None) -> Neighbours:
    """The ``k`` nearest rows of ``bank`` (positions ``offset + row``) to each query row, merged with ``best`` (the
    running top-k so far); distances ``√(‖q‖² + ‖b‖² − 2 q·b)`` in float64, ties to the lower position."""
    b, q = np.asarray(bank, dtype=np.float64), np.asarray(queries, dtype=np.float64)
    d2 = (q**2).sum(1)[:, None] + (b**2).sum(1)[None, :] - 2 * q @ b.T
    dist = np.sqrt(np.maximum(d2, 0))
    index = np.broadcast_to(np.arange(offset, offset + len(b)), dist.shape)
    if best is not None:
        dist, index = np.hstack([best.distance, dist]), np.hstack([best.index, index])
    order = np.lexsort((index, dist), axis=-1)[:, :k]
    return Neighbours(np.take_along_axis(index, order, 1), np.take_along_axis(dist, order, 1))


def nearest_training(model: nn.Module, queries: np.ndarray, images: Images, *, k: int = 5,
                     transform: Transform | None = None, batch_size: int = 1024) -> Neighbours:
    """The ``k`` nearest of ``images`` (e.g. the training split, read batch by batch and ``transform``-ed) to each of
    ``queries`` (model inputs, already standardized), in the feature space of :func:`features`."""
    q = features(model, queries)
    best = Neighbours(np.zeros((len(q), 0), dtype=np.int64), np.zeros((len(q), 0)))
    for start, chunk in batches(images, batch_size, transform):
        best = nearest_in(features(model, chunk), q, k, start, best)
    return best
