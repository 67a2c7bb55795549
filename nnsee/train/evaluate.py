"""Scores of a trained model on an image set: accuracy, per-class accuracy, confusion matrix."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nnsee.data.imageset import ImageSet
from nnsee.models.hooks import eval_mode


def predict_logits(model: nn.Module, images: np.ndarray | torch.Tensor, batch_size: int = 4096) -> np.ndarray:
    """``model(x)`` for already standardized ``images`` (N, C, H, W), in eval mode, chunked; float32 (N, K)."""
    device = next(model.parameters()).device
    x = torch.as_tensor(images)
    with eval_mode(model):  # and torch.no_grad(); the training flags come back after
        chunks = [model(x[i : i + batch_size].to(device)).float().cpu() for i in range(0, len(x), batch_size)]
    return torch.cat(chunks).numpy() if chunks else np.zeros((0, 0), np.float32)


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


def evaluate(model: nn.Module, data: ImageSet, standardizer: Any = None) -> dict[str, Any]:
    """Scores of ``model`` on ``data``, standardized first with ``standardizer`` (as stored in its run)."""
    images = standardizer.transform(data.images) if standardizer is not None else data.images
    return scores(predict_logits(model, images), data.labels, data.class_names)
