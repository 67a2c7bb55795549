"""An IDX pair (images, labels) as a streamed ImageSet: labels read whole, images read by position when asked for.

The same checks as :func:`nnsee.data.idx.load_idx_pair`, less the budget (a streamed set is never held whole). A
raw file is read in place; a ``.gz`` file, or a file whose sha256 must be checked (the named sets), is streamed once
through :func:`~nnsee.data.idx.copy_idx_payload` (gzip-bomb guard, size and sha256 checks) into the stream cache
(:mod:`nnsee.data.lazy_array`), then read in place there.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nnsee.data.idx import _is_gzip, copy_idx_payload, idx_pair_labels
from nnsee.data.imageset import ImageSet
from nnsee.data.lazy import LazyImages
from nnsee.data.lazy_array import ArrayFileSource, cached


def lazy_idx_pair(images_path: str | Path, labels_path: str | Path, class_names: list[str] | None = None,
                  source: str = "", *, expected_sha256: tuple[str, str] | None = None,
                  max_memory: int | None = None) -> ImageSet:
    """Images (N, H, W) and labels (N,) from two IDX files as a streamed ``ImageSet`` of shape (N, 1, H, W)
    (conversions as :func:`~nnsee.data.idx.load_idx_pair`: uint8 pixels become float32 ``x / 255``)."""
    img_sha, lbl_sha = expected_sha256 or (None, None)
    images_path = Path(images_path)
    header, labels, class_names = idx_pair_labels(images_path, labels_path, class_names, lbl_sha, limit=False)
    n = header.dims[0]
    if _is_gzip(images_path) or img_sha is not None:
        def fill(f: object) -> None:
            copy_idx_payload(images_path, f, sha256=img_sha)  # type: ignore[arg-type]

        path, offset = cached(images_path, "idx-payload", header.payload_bytes, fill), 0
    else:
        path, offset = images_path, header.header_bytes
    reader = ArrayFileSource(path, offset, n, header.dtype, header.dims[1:], "nhw", str(images_path))
    images = LazyImages(reader, max_memory=max_memory)
    return ImageSet(images, labels.astype(np.int64), list(class_names), source or str(images_path))
