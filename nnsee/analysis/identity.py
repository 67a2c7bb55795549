"""Fingerprints that tie an analysis to its run and its data: what a resume, a merge and the report compare.

* run: sha256 of the model's state dict (names, dtypes, shapes and bytes, in order), plus what the caller adds
  (the CLI: the run folder's path and class names);
* data: number of images, image shape, class names, sha256 of the labels, of the file list when the set has one
  (a streamed folder), and of up to ``SAMPLE`` images spread evenly over the set (read, never the whole set).
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import torch
from torch import nn

from nnsee.data.imageset import ImageSet

SAMPLE = 32


def _sha(*chunks: bytes) -> str:
    digest = hashlib.sha256()
    for chunk in chunks:
        digest.update(chunk)
    return digest.hexdigest()


def weights_sha256(model: nn.Module) -> str:
    """sha256 over each state-dict entry's name, dtype, shape and bytes."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{t.dtype}:{tuple(t.shape)};".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()


def _file_list(images: object) -> str | None:
    """sha256 of the files behind a streamed set, in its order (None for arrays and sets without files)."""
    source = getattr(images, "source", None)
    files = getattr(source, "real", None)
    if files is None:
        return None
    return _sha("\n".join(str(files[i]) for i in getattr(images, "index", range(len(files)))).encode())


def _sample(data: ImageSet) -> str:
    """sha256 of up to ``SAMPLE`` images spread evenly and their positions (of a streamed set: the readable ones;
    the same figure whether the set is streamed or in memory)."""
    n = len(data)
    at = np.unique(np.linspace(0, n - 1, min(n, SAMPLE)).round().astype(np.int64)) if n else np.zeros(0, np.int64)
    if isinstance(data.images, np.ndarray):
        images, kept = data.images[at], at
    else:
        images, kept, _ = data.images.read(at)
    return _sha(np.ascontiguousarray(images, dtype=np.float32).tobytes(), np.asarray(kept, np.int64).tobytes())


def data_fingerprint(data: ImageSet) -> dict[str, Any]:
    """The data set's identity (see the module doc); cheap for streamed sets (reads ``SAMPLE`` images)."""
    return {"n": len(data), "shape": list(data.shape), "class_names": list(data.class_names),
            "labels": _sha(np.ascontiguousarray(data.labels, np.int64).tobytes()),
            "files": _file_list(data.images), "sample": _sample(data)}
