"""Folders of real RGB photos for tests: crops of scikit-image's natural photos (offline), one class per photo."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

PHOTOS = ("astronaut", "coffee", "chelsea")


def photo_folder(root: Path, per_class: int, side: int, seed: int = 0, fmt: str = "png") -> Path:
    """``root/<photo>/<i>.<fmt>``: ``per_class`` random square crops (a third to all of the shorter side) of each of
    :data:`PHOTOS`, resized to ``side`` x ``side``. Returns ``root``."""
    import skimage.data

    rng = np.random.default_rng(seed)
    for name in PHOTOS:
        photo = getattr(skimage.data, name)()
        h, w = photo.shape[:2]
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            s = int(rng.integers(min(h, w) // 3, min(h, w) + 1))
            y, x = int(rng.integers(0, h - s + 1)), int(rng.integers(0, w - s + 1))
            crop = Image.fromarray(photo[y : y + s, x : x + s]).resize((side, side), Image.Resampling.BILINEAR)
            crop.save(root / name / f"{i}.{fmt}")
    return root
