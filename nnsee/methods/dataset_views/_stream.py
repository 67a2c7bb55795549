"""Shared plumbing of the dataset views: images as a stream of batches, and a forward pass that stops at a layer."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator

import numpy as np
import torch
from torch import nn

from nnsee.methods.attribution.target import as_input
from nnsee.methods.base import MethodError, get_module

Batch = np.ndarray | torch.Tensor
Images = np.ndarray | torch.Tensor | Iterable[Batch] | Callable[[], Iterable[Batch]]
Transform = Callable[[np.ndarray], np.ndarray]


def _as_batch(item: object) -> Batch:
    if isinstance(item, (tuple, list)) and item and isinstance(item[0], (np.ndarray, torch.Tensor)):
        item = item[0]  # (images, labels) pairs, as a DataLoader yields them
    if not isinstance(item, (np.ndarray, torch.Tensor)):
        raise MethodError(f"a batch of images must be an array (N, C, H, W), got {type(item).__name__}")
    return item


def stream(images: Images, batch_size: int) -> Iterator[Batch]:
    """Batches of ``images``: an array is cut into ``batch_size`` chunks (views, no copy); a callable is called for
    an iterable of batches; an iterable of batches (arrays, or ``(images, labels)`` pairs) is read once, lazily."""
    if isinstance(images, (np.ndarray, torch.Tensor)):
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


class _Stop(Exception):
    """Raised by a forward hook to end the forward pass once the layer is computed."""


@contextlib.contextmanager
def layer_reader(model: nn.Module, layer: str) -> Iterator[Callable[[torch.Tensor], torch.Tensor]]:
    """``with layer_reader(model, "conv2") as read: a = read(x)``: the layer's output; the forward pass stops there
    (nothing after the layer is computed). The hook is always removed."""
    module = get_module(model, layer)
    box: dict[str, torch.Tensor] = {}

    def hook(_m: nn.Module, _i: object, out: object) -> None:
        if not isinstance(out, torch.Tensor):
            raise MethodError(f"layer {layer!r} returns a {type(out).__name__}, not one tensor")
        box["out"] = out
        raise _Stop

    def read(x: torch.Tensor) -> torch.Tensor:
        box.clear()
        with contextlib.suppress(_Stop):
            model(x)
        if "out" not in box:
            raise MethodError(f"layer {layer!r} was not called in the forward pass")
        return box.pop("out")

    handle = module.register_forward_hook(hook)
    try:
        yield read
    finally:
        handle.remove()
