"""Data: one ``ImageSet`` type (images in memory or streamed: ``LazyImages``), loaders for each SPEC form, seeded splits
and standardization. Batches, with worker processes, come from :func:`nnsee.data.loader.batches` (it imports torch)."""

from nnsee.data.digits import load_digits
from nnsee.data.folder import load_folder
from nnsee.data.idx import read_idx
from nnsee.data.imageset import ImageSet, Splits
from nnsee.data.lazy import LazyImages
from nnsee.data.named import load_named
from nnsee.data.npz import load_npz
from nnsee.data.spec import describe, load_data, load_splits
from nnsee.data.splits import split
from nnsee.data.standardize import Standardizer

__all__ = [
    "ImageSet",
    "LazyImages",
    "Splits",
    "Standardizer",
    "describe",
    "load_data",
    "load_digits",
    "load_folder",
    "load_named",
    "load_npz",
    "load_splits",
    "read_idx",
    "split",
]
