"""Scores of a trained model on an image set: accuracy, per-class accuracy, confusion matrix."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nnsee.data.imageset import ImageSet
from nnsee.models.chunking import chunk_key, chunks
from nnsee.models.hooks import eval_mode

#: The memory bound on a forward chunk, in input bytes. A model's activations grow with its input, so the bound is
#: sized by the input, not counted: 16 MiB is 4,096 images of 1x28x28 (the cap), 341 of 3x64x64, 27 of 3x224x224.
#: Below it the shared tuner (:mod:`nnsee.models.chunking`) picks the size from the measured time per image.
CHUNK_BYTES = 16 * 2**20
MAX_BATCH = 4096


def chunk_size(shape: tuple[int, ...], itemsize: int = 4) -> int:
    """The most images per forward chunk: ``CHUNK_BYTES // (prod(shape) * itemsize)``, within 1..``MAX_BATCH``."""
    return max(1, min(MAX_BATCH, CHUNK_BYTES // max(1, math.prod(shape) * itemsize)))


def predict_logits(model: nn.Module, images: np.ndarray | torch.Tensor, batch_size: int | None = None,
                   transform: Callable[[np.ndarray], np.ndarray] | None = None) -> np.ndarray:
    """``model(x)`` for ``images`` (N, C, H, W), in eval mode, chunk by chunk (``batch_size`` images; default: the
    tuner's choice, at most :func:`chunk_size`); ``transform`` (a run's standardization) is applied to each chunk, so
    no standardized copy of the whole set exists. Float32 (N, K)."""
    weight = next(model.parameters())
    shape = tuple(images.shape[1:])
    key = chunk_key(model, "forward", shape, weight.dtype, weight.device)
    out = []
    with eval_mode(model):  # and torch.no_grad(); the training flags come back after
        for start, stop in chunks(len(images), key, chunk_size(shape), batch_size or None, weight.device):
            x = images[start:stop]
            if transform is not None:
                x = transform(np.asarray(x))
            out.append(model(torch.as_tensor(x).to(weight.device)).float().cpu())
    return torch.cat(out).numpy() if out else np.zeros((0, 0), np.float32)


def scores(logits: np.ndarray, labels: np.ndarray, class_names: list[str]) -> dict[str, Any]:
    """``accuracy = mean(argmax logits == y)``; ``confusion_matrix[i][j]`` counts true class i predicted as j."""
    k = len(class_names)
    labels = np.asarray(labels, dtype=np.int64)
    n = int(len(labels))
    if n == 0:
        return {"n": 0, "accuracy": None, "loss": None, "per_class_accuracy": {}, "confusion_matrix": []}
    predicted = logits.argmax(axis=1)
    confusion = np.bincount(labels * k + predicted, minlength=k * k).reshape(k, k)
    support = confusion.sum(axis=1)
    loss = F.cross_entropy(torch.from_numpy(logits), torch.from_numpy(labels)).item()
    return {
        "n": n,
        "accuracy": float(np.trace(confusion) / n),
        "loss": float(loss),
        "per_class_accuracy": {
            name: (float(confusion[i, i] / support[i]) if support[i] else None) for i, name in enumerate(class_names)
        },
        "confusion_matrix": confusion.tolist(),
    }


def evaluate(model: nn.Module, data: ImageSet, standardizer: Any = None, *, workers: int = 0) -> dict[str, Any]:
    """Scores of ``model`` on ``data``, standardized with ``standardizer`` (as stored in its run) chunk by chunk.

    A streamed set is read through :func:`nnsee.data.loader.batches` (``workers`` decoding processes); images that
    cannot be read are left out of the scores and counted in ``n_skipped``."""
    transform = standardizer.transform if standardizer is not None else None
    if not getattr(data, "streamed", False):
        return scores(predict_logits(model, data.images, transform=transform), data.labels, data.class_names)
    from nnsee.data.loader import batches

    weight = next(model.parameters())
    cuda = weight.device.type == "cuda"
    logits, labels, skipped = [], [], 0
    with eval_mode(model):
        for batch in batches(data, chunk_size(data.shape), transform=transform, workers=workers, pin_memory=cuda):
            logits.append(model(batch.images.to(weight.device, non_blocking=cuda)).float().cpu())
            labels.append(batch.labels)
            skipped += len(batch.skipped)
    k = len(data.class_names)
    out = scores(torch.cat(logits).numpy() if logits else np.zeros((0, k), np.float32),
                 torch.cat(labels).numpy() if labels else np.zeros(0, np.int64), data.class_names)
    out["n_skipped"] = skipped
    return out
