"""The one in-memory type for a labelled image set, and the train/validation/test triple."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from nnsee.errors import LISTED, DataError, first_few

if TYPE_CHECKING:
    from nnsee.data.lazy import LazyImages

__all__ = ["LISTED", "ImageSet", "Splits", "first_few"]

def shown_name(name: object) -> str:
    """How a class name looks on a page: NFC-normalized, without invisible format characters (Unicode category
    Cf: zero-width spaces and joiners, the bidi controls such as U+202E). Two names equal here look the same."""
    return "".join(ch for ch in unicodedata.normalize("NFC", str(name)) if unicodedata.category(ch) != "Cf")


def _same_names(names: Sequence[object], source: str) -> DataError | None:
    """The error for the first two classes whose names look the same (:func:`shown_name`), or None."""
    seen: dict[str, int] = {}
    for j, name in enumerate(names):
        i = seen.setdefault(shown_name(name), j)
        if i != j:
            what = (f"the same name {first_few([names[i]])}" if names[i] == name else
                    f"names that look the same ({first_few([names[i]])} and {first_few([name])}: equal once "
                    "Unicode-normalized (NFC) and stripped of invisible format characters)")
            return DataError(f"{source or 'images'}: classes {i} and {j} have {what}; class names must be distinct: "
                             "rename one of the class folders, or fix the class_names array of the .npz")
    return None


@dataclass
class ImageSet:
    """Labelled images: ``images`` float32 (N, C, H, W), ``labels`` int64 (N,), one name per class.

    ``images`` is an array, or a :class:`~nnsee.data.lazy.LazyImages` (``streamed``: decoded batch by batch when read,
    never here). ``source`` says where the images came from (a path or a built-in name); ``skipped`` lists
    ``(path, reason)`` for the files a loader could not use.
    """

    images: np.ndarray | LazyImages
    labels: np.ndarray
    class_names: list[str]
    source: str = ""
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.images.ndim != 4:
            raise DataError(
                f"{self.source or 'images'}: expected images of shape (N, C, H, W), got {self.images.shape}"
            )
        if self.images.dtype != np.float32:  # a LazyImages is float32 already: never decoded here
            self.images = self.images.astype(np.float32)
        self.labels = np.asarray(self.labels, dtype=np.int64)
        if self.labels.shape != (self.images.shape[0],):
            raise DataError(
                f"{self.source or 'images'}: {self.images.shape[0]} images but labels of shape {self.labels.shape}"
            )
        if len(self.labels) and (self.labels.min() < 0 or self.labels.max() >= len(self.class_names)):
            raise DataError(
                f"{self.source or 'images'}: labels must lie in 0..{len(self.class_names) - 1} "
                f"(one per class name), found {int(self.labels.min())}..{int(self.labels.max())}"
            )
        same = _same_names(self.class_names, self.source)
        if same is not None:
            raise same

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def shape(self) -> tuple[int, int, int]:
        """The shape of one image, (C, H, W)."""
        return tuple(int(s) for s in self.images.shape[1:])  # type: ignore[return-value]

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def streamed(self) -> bool:
        """Whether the images are read from disk batch by batch (a LazyImages) instead of held in memory."""
        return not isinstance(self.images, np.ndarray)

    def subset(self, index: np.ndarray) -> ImageSet:
        """The images at ``index`` (a copy; for a streamed set, a lazy subset: nothing read), with the same class
        names and source."""
        images = self.images.take(np.asarray(index)) if self.streamed else self.images[index]
        return ImageSet(images, self.labels[index], list(self.class_names), self.source)

    def class_counts(self) -> np.ndarray:
        return np.bincount(self.labels, minlength=self.n_classes)


@dataclass
class Splits:
    """Train, validation and test sets of one data set, and the ``spec`` that reproduces them."""

    train: ImageSet
    val: ImageSet
    test: ImageSet
    spec: dict[str, Any] = field(default_factory=dict)

    @property
    def class_names(self) -> list[str]:
        return self.train.class_names

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.train.shape
