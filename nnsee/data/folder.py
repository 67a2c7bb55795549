"""A folder of class subfolders of images (``ROOT/<class>/<image>``), decoded deterministically and defensively.

Rules:

* Classes are the subfolders of ``root``, in sorted (case-sensitive) order; names are kept verbatim (escaping is the
  renderers' job; bytes that are not UTF-8 become ``\\xNN``). Names equal but for case are distinct classes, with a
  warning. Images in nested folders belong to the class folder they are in.
* Every file that is not used is recorded in ``ImageSet.skipped`` as ``(path, reason)``: hidden files
  (``.DS_Store``), known non-image files (``.txt``), empty, truncated, garbage or unreadable files, images over
  ``MAX_PIXELS`` (rejected from the header, before decoding), files at the top level, and links that leave ``root``
  (never followed), broken links and link loops. Empty class folders are dropped with a note there too.
* Each image is decoded by :func:`nnsee.data.image_decode.decode_stream` (shared with the live page's uploads):
  first frame, EXIF orientation applied, transparency composited on white, 16-bit grey scaled by 1/65535, then L or
  RGB, centre-cropped and resized to ``size`` x ``size``, as float32 in [0, 1] of shape (C, size, size).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

from nnsee.data.image_decode import UnusableImage, decode_stream
from nnsee.data.imageset import ImageSet
from nnsee.errors import DataError

#: Largest image accepted, in pixels (width x height), checked from the header before any decoding.
MAX_PIXELS = 40_000_000

NON_IMAGE_SUFFIXES = frozenset(
    {".txt", ".md", ".csv", ".json", ".xml", ".html", ".htm", ".py", ".ipynb", ".zip", ".tar", ".gz", ".db", ".ini"}
    | {".log", ".pdf", ".yaml", ".yml", ".npz", ".npy"}
)


class _Skip(Exception):
    """A file that is not used, with the reason."""


def _display_name(name: str) -> str:
    """``name`` as text that always encodes (undecodable bytes from the filesystem become ``\\xNN``)."""
    return os.fsencode(name).decode("utf-8", "backslashreplace")


def _contained(real: str, root_real: str) -> bool:
    return os.path.commonpath([real, root_real]) == root_real


def _walk(
    shown: Path, real: str, root_real: str, skipped: list[tuple[str, str]], visited: set[str]
) -> list[tuple[Path, str]]:
    """(shown path, real path) of the candidate image files under the folder ``real`` (shown to users as ``shown``)."""
    if real in visited:
        skipped.append((str(shown), "folder already visited (symlink loop), not followed again"))
        return []
    visited.add(real)
    try:
        entries = sorted(os.scandir(real), key=lambda e: e.name)
    except OSError as e:
        skipped.append((str(shown), f"cannot list folder: {e.strerror or e}"))
        return []
    files: list[tuple[Path, str]] = []
    for entry in entries:
        path = shown / _display_name(entry.name)
        target = _resolve(entry, path, root_real, skipped)
        if target is None:
            continue
        if os.path.isdir(target):
            files += _walk(path, target, root_real, skipped, visited)
        elif os.path.isfile(target):
            reason = _not_an_image(entry.name)
            if reason:
                skipped.append((str(path), reason))
            else:
                files.append((path, target))
        else:
            skipped.append((str(path), "not a regular file"))
    return files


def _resolve(entry: os.DirEntry, path: Path, root_real: str, skipped: list[tuple[str, str]]) -> str | None:
    """The real path of ``entry``, or None (recorded in ``skipped``) for hidden entries and links we must not use."""
    if entry.name.startswith("."):
        skipped.append((str(path), "hidden file or folder, ignored"))
        return None
    if not entry.is_symlink():
        return entry.path
    real = os.path.realpath(entry.path)
    if not _contained(real, root_real):
        skipped.append((str(path), "symbolic link leading outside the data folder, not followed"))
        return None
    if not os.path.exists(real):
        skipped.append((str(path), "broken symbolic link or symlink loop"))
        return None
    return real


def _not_an_image(name: str) -> str:
    suffix = os.path.splitext(name)[1].lower()
    if suffix in NON_IMAGE_SUFFIXES or name in ("Thumbs.db", "desktop.ini"):
        return f"not an image file ({suffix or name}), ignored"
    return ""


def decode_image(path: str | Path, size: int = 28, grayscale: bool = True) -> np.ndarray:
    """One image file as float32 (C, size, size) in [0, 1] (rules in the module docstring).

    Raises ``DataError`` naming the file if it cannot be used.
    """
    try:
        return _decode(str(path), size, grayscale)
    except _Skip as e:
        raise DataError(f"{path}: {e}") from None


def _decode(path: str, size: int, grayscale: bool) -> np.ndarray:
    try:
        if os.stat(path).st_size == 0:
            raise _Skip("empty file (0 bytes)")
        f = open(path, "rb")  # noqa: SIM115 - closed below
    except PermissionError:
        raise _Skip("cannot read the file (permission denied)") from None
    except OSError as e:
        raise _Skip(f"cannot read the file ({e.strerror or e})") from None
    with f:
        try:
            return decode_stream(f, size, grayscale, MAX_PIXELS)
        except UnusableImage as e:
            raise _Skip(str(e)) from None


def load_folder(root: str | Path, size: int = 28, grayscale: bool = True) -> ImageSet:
    """Images under ``root/<class>/`` as an ``ImageSet`` of shape (N, 1 or 3, size, size); labels follow sorted names.

    Unusable files are skipped and listed in ``skipped``; raises ``DataError`` only if fewer than two classes with
    usable images remain.
    """
    if size < 1:
        raise DataError(f"size must be a positive number of pixels, got {size}")
    root_path = Path(root).expanduser()
    if not root_path.is_dir():
        raise DataError(f"{root_path}: not a folder (expected ROOT/<class name>/<image files>)")
    root_real = os.path.realpath(root_path)
    skipped: list[tuple[str, str]] = []
    try:
        top = sorted(os.scandir(root_real), key=lambda e: e.name)
    except OSError as e:
        raise DataError(f"{root_path}: cannot list the folder: {e.strerror or e}") from e
    class_files: list[tuple[str, Path, list[tuple[Path, str]]]] = []
    for entry in top:
        path = root_path / _display_name(entry.name)
        target = _resolve(entry, path, root_real, skipped)
        if target is None:
            continue
        if os.path.isdir(target):
            class_files.append((_display_name(entry.name), path, _walk(path, target, root_real, skipped, set())))
        else:
            skipped.append((str(path), "file at the top level, not inside a class folder"))

    images: list[np.ndarray] = []
    labels: list[int] = []
    names: list[str] = []
    empty: list[str] = []
    for name, folder, files in class_files:
        decoded = []
        for shown, real in files:
            try:
                decoded.append(_decode(real, size, grayscale))
            except _Skip as e:
                skipped.append((str(shown), str(e)))
        if not decoded:
            empty.append(name)
            skipped.append((str(folder), "class folder without usable images, dropped"))
            continue
        images += decoded
        labels += [len(names)] * len(decoded)
        names.append(name)

    folded: dict[str, list[str]] = {}
    for n in names:
        folded.setdefault(n.casefold(), []).append(n)
    same = [group for group in folded.values() if len(group) > 1]
    if same:
        warnings.warn(
            f"{root_path}: class folders whose names differ only in case are distinct classes: {same}; "
            "merge or rename them if they are meant to be one class",
            stacklevel=2,
        )
    if len(names) < 2:
        found = f"{len(names)} usable class{'es' if len(names) != 1 else ''}" + (f" ({names[0]!r})" if names else "")
        details = f"; empty class folders: {empty}" if empty else ""
        if skipped:
            details += f"; {len(skipped)} entries skipped, e.g. {skipped[0][0]}: {skipped[0][1]}"
        raise DataError(
            f"{root_path}: found {found}{details}. A folder data set needs at least 2 classes with images: "
            "put them in one subfolder per class, e.g. ROOT/cat/1.png and ROOT/dog/2.jpg"
        )
    return ImageSet(np.stack(images), np.array(labels, dtype=np.int64), names, str(root_path), skipped)
