"""The data SPEC: one string that names a data set, loaded into reproducible train / validation / test splits.

Accepted forms, checked in this order: ``digits`` (built in, offline), ``fashion-mnist`` / ``mnist`` (named IDX
sets with an official test split, which is kept: only validation is split off the training set), then a path: an
``.npz`` file, a folder holding IDX files (``train-images-idx3-ubyte[.gz]`` ...), or a folder of class subfolders.
A folder that happens to be called ``digits`` is reached as ``./digits``.
"""

from __future__ import annotations

import math
import os
import stat
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from nnsee.data.budget import default_max_memory
from nnsee.data.conform import conform, conformed_shape
from nnsee.data.digits import load_digits
from nnsee.data.folder import load_folder, walk_folder
from nnsee.data.idx import read_idx_header
from nnsee.data.image_decode import RESIZE_RULES, check_resize
from nnsee.data.imageset import ImageSet, Splits
from nnsee.data.lazy_folder import lazy_folder
from nnsee.data.lazy_npz import lazy_npz
from nnsee.data.named import (
    NAMED_SETS,
    TEST_IMAGES,
    TRAIN_IMAGES,
    find_idx_file,
    find_named,
    has_idx_files,
    load_idx_folder,
    load_named,
)
from nnsee.data.npz import _X_KEYS, MAX_IMAGE_BYTES, _declared, load_npz
from nnsee.data.splits import _check_fractions, _indices, split, split_train_val
from nnsee.errors import DataError, not_one_of
from nnsee.io import open_regular

ACCEPTED = (
    "'digits' (built in, offline), 'fashion-mnist', 'mnist', a folder of class subfolders (ROOT/<class>/<images>), "
    "an .npz file (arrays x and y), or a folder of IDX files (train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte"
    "[.gz], optionally t10k-*)"
)
SPEC_FORMAT = 1
_ARGS = ("spec", "size", "grayscale", "data_dir", "seed", "val_fraction", "test_fraction", "resize")


def _kind(spec: str) -> tuple[str, str]:
    """(kind, canonical spec): kind is digits, named, npz, idx or folder; paths become absolute. A path must be a
    regular file or a folder this user can read (never a FIFO or device, links followed)."""
    key = spec.strip().lower().replace("_", "-")
    if key == "digits":
        return "digits", "digits"
    if key in NAMED_SETS:
        return "named", key
    path = Path(spec).expanduser()
    try:
        mode = os.stat(path).st_mode
        if stat.S_ISDIR(mode):
            return ("idx" if has_idx_files(path) else "folder"), str(path.resolve())
    except (FileNotFoundError, NotADirectoryError):
        raise DataError(f"unknown data SPEC {spec!r}: not a built-in name and no such file or folder. "
                        f"Accepted: {ACCEPTED}") from None
    except PermissionError:
        raise DataError(f"{spec}: permission denied: the data set, or a folder on the way to it (through links too), "
                        "is not readable by this user; make it readable, or copy the data set to a folder of yours"
                        ) from None
    except OSError as e:
        raise DataError(f"{spec}: cannot reach the data set: {e.strerror or e}; give the path of a readable "
                        "file or folder") from None
    if not stat.S_ISREG(mode):
        raise DataError(f"{spec}: not a regular file or folder (a FIFO, device or socket); nnsee reads data sets "
                        f"only from regular files and folders. Accepted SPEC forms: {ACCEPTED}")
    if path.suffix.lower() != ".npz":
        raise DataError(f"{spec}: unsupported data file (expected .npz). Accepted SPEC forms: {ACCEPTED}")
    return "npz", str(path.resolve())


def load_data(
    spec: str,
    *,
    size: int | None = None,
    grayscale: bool | None = None,
    data_dir: str | Path | None = None,
    seed: int = 0,
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
    download: bool = True,
    resize: str = "square",
    stream: bool | None = None,
    max_memory: int | None = None,
) -> Splits:
    """Train / validation / test splits of the data set named by ``spec`` (forms in the module docstring).

    ``size`` and ``grayscale`` resize and convert (folders default to 28 and grey); ``resize`` is the rule that
    brings a folder's image files to ``size`` (:data:`~nnsee.data.image_decode.RESIZE_RULES`: ``square`` or
    ``torchvision``; arrays of another size are always centre-cropped to a square). Splits are stratified by
    class and seeded by ``seed``; sets with an official test split keep it and ignore ``test_fraction``.
    ``Splits.spec`` holds everything ``load_splits`` needs to rebuild the same splits.

    ``stream``: True reads the images batch by batch when they are used (``ImageSet.streamed``; nothing decoded
    here), False decodes them all now, None (the default) streams when the whole set as float32 would take more than
    ``max_memory`` bytes (default :func:`~nnsee.data.budget.default_max_memory`, half of the available memory) or
    more than the 4 GiB the in-memory loaders accept. The built-in ``digits`` are always in memory. Streamed or not,
    the splits hold the same images in the same order (they are computed from the labels alone).
    """
    check_resize(resize, "the resize rule (resize=)", DataError)
    kind, canonical = _kind(str(spec))
    data_dir_abs = str(Path(data_dir).expanduser().resolve()) if data_dir is not None else None
    grey = True if grayscale is None else grayscale
    walked = walk_folder(canonical) if kind == "folder" and stream is not False else None
    streamed = kind != "digits" and (stream is True or (stream is None and _too_big(
        kind, canonical, size, grayscale, data_dir_abs, walked, max_memory)))
    lazy = {"stream": True, "max_memory": max_memory} if streamed else {}
    test: ImageSet | None = None
    if kind == "digits":
        data = load_digits()
    elif kind == "named":
        data, test = load_named(canonical, data_dir=data_dir_abs, download=download, **lazy)
    elif kind == "npz":
        data = lazy_npz(canonical, max_memory=max_memory) if streamed else load_npz(canonical)
    elif kind == "idx":
        data, test = load_idx_folder(canonical, **lazy)
    elif streamed:
        data = lazy_folder(canonical, size=size or 28, grayscale=grey, resize=resize, walked=walked,
                           max_memory=max_memory)
    else:
        data = load_folder(canonical, size=size or 28, grayscale=grey, resize=resize, walked=walked)
    data = conform(data, size, grayscale)
    official_test = test is not None
    if test is not None:
        test = conform(test, size, grayscale)
        train, val = split_train_val(data, val_fraction, seed)
    elif kind == "folder" and not streamed:  # decoded here, owned by no one else: cut in place, not copied
        train, val, test = split_in_place(data, val_fraction, test_fraction, seed)
    else:
        train, val, test = split(data, val_fraction, test_fraction, seed)
    record: dict[str, Any] = {
        "format": SPEC_FORMAT,
        "kind": kind,
        "spec": canonical,
        "size": size,
        "grayscale": grayscale,
        "data_dir": data_dir_abs,
        "seed": int(seed),
        "val_fraction": float(val_fraction),
        "test_fraction": float(test_fraction),
        "official_test": official_test,
        "counts": {"train": len(train), "val": len(val), "test": len(test)},
    }
    if resize != RESIZE_RULES[0]:  # square, the default, is not written (a spec without it reads as square)
        record["resize"] = resize
    return Splits(train, val, test, record)


def _decoded_bytes(kind: str, canonical: str, size: int | None, grayscale: bool | None, data_dir: str | None,
                   walked: tuple | None) -> int | None:
    """The whole set's size as float32 after conversion, from headers and the folder walk alone (None if unknown:
    files not found yet, or damaged, which the in-memory loaders then report)."""
    if kind == "folder":
        count = sum(len(files) for _, _, files in walked[2])  # type: ignore[index]
        return count * (1 if grayscale is None or grayscale else 3) * (size or 28) ** 2 * 4
    try:
        if kind == "npz":
            with open_regular(canonical, "an .npz data file", error=DataError) as f:
                declared = _declared(Path(canonical), f, os.fstat(f.fileno()).st_size)
            x = next((declared[k][0] for k in _X_KEYS if k in declared), None)
            if x is None or len(x) not in (3, 4):
                return None
            shapes = [(x[0], *((1, *x[1:]) if len(x) == 3 else x[1:] if x[1] in (1, 3) else (x[3], *x[1:3])))]
        else:
            files = find_named(canonical, data_dir) if kind == "named" else {
                base: find_idx_file(Path(canonical), base) for base in (TRAIN_IMAGES, TEST_IMAGES)}
            if files is None:
                return None
            headers = [read_idx_header(files[b], limit=False) for b in (TRAIN_IMAGES, TEST_IMAGES) if files.get(b)]
            shapes = [(h.dims[0], 1, *h.dims[1:]) for h in headers if len(h.dims) == 3]
    except DataError:
        return None
    return sum(n * math.prod(conformed_shape(tuple(rest), size, grayscale)) * 4 for n, *rest in shapes)


def _too_big(kind: str, canonical: str, size: int | None, grayscale: bool | None, data_dir: str | None,
             walked: tuple | None, max_memory: int | None) -> bool:
    """Whether the set decoded whole would pass the memory budget or the in-memory loaders' 4 GiB."""
    need = _decoded_bytes(kind, canonical, size, grayscale, data_dir, walked)
    budget = max_memory if max_memory is not None else default_max_memory()
    return need is not None and need > min(budget, MAX_IMAGE_BYTES)


def split_in_place(data: ImageSet, val_fraction: float, test_fraction: float,
                   seed: int) -> tuple[ImageSet, ImageSet, ImageSet]:
    """The splits :func:`~nnsee.data.splits.split` gives (same images, same order), as three views of
    ``data.images`` reordered in place (each permutation cycle moved through one spare image), so a decoded folder is
    never held twice: ``split`` copies every image into its part while the original is still alive."""
    _check_fractions(val_fraction, test_fraction)
    parts = _indices(data, (val_fraction, test_fraction), seed)
    order = np.concatenate(parts)
    x, done = data.images, np.zeros(len(order), dtype=bool)
    for start in range(len(order)):
        if done[start] or order[start] == start:
            continue
        spare, j = x[start].copy(), start
        while not done[j]:
            done[j] = True
            k = int(order[j])
            if k == start:
                x[j] = spare
                break
            x[j] = x[k]
            j = k
    labels = data.labels[order]
    ends = np.cumsum([len(p) for p in parts])[:-1]
    return tuple(ImageSet(xs, ys, list(data.class_names), data.source, data.skipped)  # type: ignore[return-value]
                 for xs, ys in zip(np.split(x, ends), np.split(labels, ends), strict=True))


CHANGED = ("warn", "refuse")


PATH_KINDS = ("npz", "idx", "folder")  # data sets read from a path, which can move


def load_splits(spec: dict[str, Any], *, download: bool = True, changed: str = "warn",
                path: str | Path | None = None, stream: bool | None = None, max_memory: int | None = None) -> Splits:
    """The splits that ``load_data`` built when it wrote ``spec`` (a ``Splits.spec`` dict).

    When the data's per-split counts differ from the ones recorded (a file added or removed), the splits are not the
    ones the run saw: images may have moved between training and test. ``changed="refuse"`` raises a DataError
    saying what changed, ``"warn"`` warns and goes on. ``path`` is where a data set read from a path (npz, IDX or
    image folder) lives now, if it was moved: it must be of the same kind and give the same counts (else refused).
    A recorded path that no longer exists is a DataError saying so and what to do. ``stream`` and ``max_memory`` as
    in :func:`load_data` (the same splits either way).
    """
    if changed not in CHANGED:
        raise DataError(not_one_of("changed", changed, CHANGED))
    if spec is None:
        raise DataError("this run records no data set (a model adopted without --data): give one, e.g. nnsee "
                        "evaluate RUN --data SPEC, or adopt the model again with --data SPEC for the report's "
                        "data views")
    if not isinstance(spec, dict) or "spec" not in spec:
        raise DataError(f"data spec must be a dict with a 'spec' field (from Splits.spec), got {str(spec)[:200]}")
    if spec.get("format", SPEC_FORMAT) > SPEC_FORMAT:
        raise DataError(f"data spec format {spec['format']} is newer than this nnsee supports ({SPEC_FORMAT})")
    args = {k: spec[k] for k in _ARGS if k in spec and spec[k] is not None}
    source = str(args.pop("spec"))
    kind = spec.get("kind")
    if path is not None:
        if kind not in PATH_KINDS:
            raise DataError(f"the run was trained on {source!r}, which is not read from a path: it cannot be moved, "
                            "so give no new place for it")
        source = str(path)
        if (now := _kind(source)[0]) != kind:
            raise DataError(f"{source}: the run was trained on {_KIND_WORDS[kind]}, this is {_KIND_WORDS[now]}; "
                            "give the place the same data set was moved to")
        changed = "refuse"
    elif kind in PATH_KINDS and not os.path.lexists(source):
        raise DataError(f"the data set the run was trained on, {source}, is missing (moved, renamed or deleted): "
                        f"move it back to {source}, or give its new place (nnsee report RUN --data NEW_PATH; "
                        "load_splits(spec, path=NEW_PATH) in Python): the same images, checked by their counts")
    splits = load_data(source, download=download, stream=stream, max_memory=max_memory, **args)
    expected = spec.get("counts")
    if expected and expected != splits.spec["counts"]:
        what = (f"{source}: the data changed since these splits were made: counts were {expected}, "
                f"now {splits.spec['counts']}")
        if changed == "refuse":
            raise DataError(f"{what}; the splits would differ (test images could move into training)")
        warnings.warn(what, stacklevel=2)
    return splits


_KIND_WORDS = {"npz": "an .npz file", "idx": "a folder of IDX files", "folder": "a folder of class subfolders",
               "digits": "the built-in digits", "named": "a named data set"}


def describe(splits: Splits, max_skipped: int = 5) -> dict[str, Any]:
    """A JSON-safe summary: sizes, classes, shape, per-class counts, source, skipped files, pixel range, whether
    streamed. A streamed set is not decoded: its pixel range is None (it would read every image)."""
    parts = {"train": splits.train, "val": splits.val, "test": splits.test}
    per_split = {k: v.class_counts() for k, v in parts.items()}
    skipped = splits.train.skipped
    streamed = any(v.streamed for v in parts.values())
    nonempty = [v.images for v in parts.values() if len(v)] if not streamed else []
    return {
        "source": splits.train.source,
        "spec": splits.spec,
        "n": sum(len(v) for v in parts.values()),
        "classes": list(splits.class_names),
        "n_classes": len(splits.class_names),
        "shape": list(splits.shape),
        "splits": {k: len(v) for k, v in parts.items()},
        "class_counts": [
            {"class": name, **{k: int(c[i]) for k, c in per_split.items()}}
            for i, name in enumerate(splits.class_names)
        ],
        "pixel_range": [min(float(x.min()) for x in nonempty), max(float(x.max()) for x in nonempty)]
        if nonempty
        else None,
        "streamed": streamed,
        "skipped": len(skipped),
        "skipped_examples": [{"path": p, "reason": r} for p, r in skipped[:max_skipped]],
    }
