"""Shared plumbing of the dataset views: images as a stream of batches (a layer's output is read with
:func:`nnsee.methods.base.layer_reader`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import numpy as np
import torch
from torch import nn

from nnsee.data.lazy import LazyImages
from nnsee.methods.attribution.target import as_input
from nnsee.methods.base import MethodError

Batch = np.ndarray | torch.Tensor
Images = np.ndarray | torch.Tensor | LazyImages | Iterable[Batch] | Callable[[], Iterable[Batch]]
Transform = Callable[[np.ndarray], np.ndarray]


def _as_batch(item: object) -> Batch:
    if isinstance(item, (tuple, list)) and item and isinstance(item[0], (np.ndarray, torch.Tensor)):
        item = item[0]  # (images, labels) pairs, as a DataLoader yields them
    if not isinstance(item, (np.ndarray, torch.Tensor)):
        raise MethodError(f"a batch of images must be an array (N, C, H, W), got {type(item).__name__}")
    return item


def stream(images: Images, batch_size: int) -> Iterator[Batch]:
    """Batches of ``images``: an array is cut into ``batch_size`` chunks (views, no copy), a streamed set
    (:class:`~nnsee.data.lazy.LazyImages`) likewise, each chunk decoded when it is reached (an image that cannot be
    read then is a one-line DataError); a callable is called for an iterable of batches; an iterable of batches
    (arrays, or ``(images, labels)`` pairs) is read once, lazily."""
    if isinstance(images, (np.ndarray, torch.Tensor, LazyImages)):
        for start in range(0, len(images), batch_size):
            yield images[start : start + batch_size]
        return
    source = images() if callable(images) else images
    for item in source:
        yield _as_batch(item)


def prepared(batch: Batch, model: nn.Module, transform: Transform | None) -> torch.Tensor:
    """One batch as the model's input tensor, after ``transform`` (e.g. the run's standardization) if given."""
    if transform is not None:
        arr = batch.detach().cpu().numpy() if isinstance(batch, torch.Tensor) else np.asarray(batch)
        batch = transform(arr)
    return as_input(batch, model)

