"""A folder of class subfolders as a streamed ImageSet: scanned now, each image decoded when it is read.

The scan is :func:`~nnsee.data.folder.walk_folder` (the same walk and skip rules as ``load_folder``) plus, for each
candidate file, the decoder's header checks (:func:`~nnsee.data.image_decode.check_header`: a regular non-empty
file, a supported format, at most ``MAX_PIXELS``), so files that ``load_folder`` would skip for those reasons are
skipped here too, with the same reasons, and a class left without files is dropped. No budget refusal: only the file
table and the labels are held. A file that fails when it is read (truncated data, replaced by garbage since the
scan) is reported by ``LazyImages.read`` in its skipped list, and the pass goes on.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nnsee.data.folder import (
    MAX_DEPTH,
    MAX_ENTRIES,
    MAX_PIXELS,
    ClassFiles,
    _decode,
    _open_image,
    _Skip,
    check_classes,
    walk_folder,
    warn_same_but_case,
)
from nnsee.data.image_decode import UnusableImage, check_header, check_resize
from nnsee.data.imageset import ImageSet
from nnsee.data.lazy import LazyImages
from nnsee.errors import DataError


class FolderSource:
    """Image files decoded on demand at ``size`` (1 or 3 channels) by the resize rule ``resize``."""

    def __init__(self, shown: list[str], real: list[str], size: int, grayscale: bool, resize: str, where: str) -> None:
        self.shown, self.real, self.size, self.grayscale, self.resize = shown, real, size, grayscale, resize
        self.n, self.where = len(real), where
        self.shape = (1 if grayscale else 3, size, size)

    def read_into(self, positions: np.ndarray, out: np.ndarray) -> list[tuple[int, str, str]]:
        failed: list[tuple[int, str, str]] = []
        for i, p in enumerate(positions):
            try:
                out[i] = _decode(self.real[p], self.size, self.grayscale, self.resize)
            except _Skip as e:
                failed.append((i, self.shown[p], str(e)))
        return failed


def _header_ok(real: str) -> str:
    """'' if the file at ``real`` passes the header checks, else why not."""
    try:
        with _open_image(real) as f:
            check_header(f, MAX_PIXELS)
    except (_Skip, UnusableImage) as e:
        return str(e)
    return ""


def lazy_folder(root: str | Path, size: int = 28, grayscale: bool = True, *, max_entries: int = MAX_ENTRIES,
                max_depth: int = MAX_DEPTH, resize: str = "square",
                walked: tuple[Path, list[tuple[str, str]], ClassFiles] | None = None,
                max_memory: int | None = None) -> ImageSet:
    """The folder ``root`` as a streamed ``ImageSet`` of shape (N, 1 or 3, size, size) (rules in the module
    docstring; the same classes, labels and order as :func:`~nnsee.data.folder.load_folder` where every file that
    passes the header checks decodes)."""
    if size < 1:
        raise DataError(f"size must be a positive number of pixels, got {size}")
    check_resize(resize, error=DataError)
    root_path, skipped, class_files = walked or walk_folder(root, max_entries=max_entries, max_depth=max_depth)
    shown: list[str] = []
    real: list[str] = []
    labels: list[int] = []
    names: list[str] = []
    empty: list[str] = []
    for name, folder, files in class_files:
        start = len(real)
        for shown_path, real_path in files:
            if why := _header_ok(real_path):
                skipped.append((shown_path, why))
            else:
                shown.append(shown_path)
                real.append(real_path)
        if len(real) == start:
            empty.append(name)
            skipped.append((folder, "class folder without usable images, dropped"))
            continue
        labels += [len(names)] * (len(real) - start)
        names.append(name)
    check_classes(root_path, names, empty, skipped)
    source = FolderSource(shown, real, size, grayscale, resize, str(root_path))
    data = ImageSet(LazyImages(source, max_memory=max_memory), np.array(labels, dtype=np.int64), names,
                    str(root_path), skipped)
    warn_same_but_case(root_path, names)
    return data
