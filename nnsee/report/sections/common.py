"""What every section needs: the trained run, its data, standardized once, and tile helpers."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from nnsee.data.imageset import Splits
from nnsee.render import data_uri, image_tile, mosaic, weight_tile


@dataclass
class ReportInput:
    """A loaded run and its splits; standardized copies are made once and shared by the sections."""

    run: Any  # nnsee.train.Run
    splits: Splits
    max_units: int = 256
    gallery: int = 16
    notes: list[str] = field(default_factory=list)

    @property
    def class_names(self) -> list[str]:
        return list(self.run.class_names)

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.run.input_shape)  # type: ignore[return-value]

    @cached_property
    def train_std(self) -> np.ndarray:
        return self.run.standardizer.transform(self.splits.train.images)

    @cached_property
    def val_std(self) -> np.ndarray:
        return self.run.standardizer.transform(self.splits.val.images)

    @cached_property
    def test_std(self) -> np.ndarray:
        return self.run.standardizer.transform(self.splits.test.images)


def upscale_for(shape: tuple[int, ...], target: int = 84) -> int:
    """An integer zoom that shows an (C, H, W) image about ``target`` pixels wide."""
    return max(1, round(target / max(shape[-1], 1)))


def weight_uri(w: np.ndarray, scale: float, upscale: int) -> str:
    return data_uri(weight_tile(w, scale, upscale))


def image_uri(x: np.ndarray, upscale: int) -> str:
    return data_uri(image_tile(np.clip(x, 0, 1), upscale))


def images_grid_uri(images: np.ndarray, ncols: int, upscale: int) -> str:
    """Several (C, H, W) images in [0, 1] as one PNG grid, so a card needs one image, not nine."""
    return data_uri(mosaic(images, ncols=ncols, upscale=upscale, pad=1))
