"""Standardization: the same image under each mode, and how per-image magnitudes differ between modes.

The slide's argument: a linear score ``W_k · x`` grows with the image's norm, so without standardization a bright
or thick image scores high for every class. ``image`` mode gives every image mean 0 and norm ``sqrt(D)`` (equal
magnitude); ``pixel`` mode centres and scales each pixel by training statistics, which leaves per-image norms
unequal. Math of each mode: :mod:`nnsee.data.standardize`.
"""

from __future__ import annotations

import numpy as np

from nnsee.data.standardize import Standardizer
from nnsee.errors import DataError
from nnsee.methods.base import MethodError


def _standardizers(train: np.ndarray | Standardizer) -> dict[str, Standardizer]:
    try:
        if isinstance(train, Standardizer):
            if train.mode != "pixel" or train.mean is None:
                raise MethodError("pass the training images, or a Standardizer('pixel') fitted on them")
            pixel = train
        else:
            pixel = Standardizer("pixel").fit(np.asarray(train))
    except DataError as exc:
        raise MethodError(f"cannot fit pixel standardization on the training images: {exc}") from exc
    return {"none": Standardizer("none"), "image": Standardizer("image"), "pixel": pixel}


def standardization_views(image: np.ndarray, train_images: np.ndarray | Standardizer) -> dict[str, np.ndarray]:
    """``{mode: image standardized by mode}`` for ``none``, ``image``, ``pixel``; each (C, H, W) float32.

    ``image`` is one raw image in [0, 1]; ``pixel`` statistics are fitted on ``train_images`` (N, C, H, W), or
    taken from a fitted ``Standardizer("pixel")`` passed instead.
    """
    image = np.asarray(image, dtype=np.float32)
    if image.ndim != 3:
        raise MethodError(f"expected one image of shape (C, H, W), got {image.shape}")
    try:
        return {mode: s.transform(image[None])[0] for mode, s in _standardizers(train_images).items()}
    except DataError as exc:
        raise MethodError(str(exc)) from exc


def standardization_norms(images: np.ndarray, train_images: np.ndarray | Standardizer) -> dict[str, np.ndarray]:
    """``{mode: ‖x'_n‖₂}`` (N,) per mode, for raw images (N, C, H, W): equal (``sqrt(D)``) only in ``image`` mode
    (0 for a constant image)."""
    images = np.asarray(images, dtype=np.float32)
    if images.ndim != 4:
        raise MethodError(f"expected images of shape (N, C, H, W), got {images.shape}")
    out = {}
    try:
        for mode, s in _standardizers(train_images).items():
            x = s.transform(images).reshape(len(images), -1).astype(np.float64)
            out[mode] = np.sqrt((x * x).sum(1))
    except DataError as exc:
        raise MethodError(str(exc)) from exc
    return out
