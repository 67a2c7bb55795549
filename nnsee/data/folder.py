"""A folder of class subfolders of images (``ROOT/<class>/<image>``), decoded deterministically and defensively.

Rules:

* Classes are the subfolders of ``root``, in sorted (case-sensitive) order; names are kept verbatim (escaping is the
  renderers' job; bytes that are not UTF-8 become ``\\xNN``). Names equal but for case are distinct classes, with a
  warning. Images in nested folders belong to the class folder they are in.
* Every file that is not used is recorded in ``ImageSet.skipped`` as ``(path, reason)``: hidden files
  (``.DS_Store``), known non-image files (``.txt``), empty, truncated, garbage or unreadable files, images over
  ``MAX_PIXELS`` (rejected from the header, before decoding), files at the top level, and links that leave ``root``
  (never followed), broken links, link loops and links through folders this user cannot read, FIFOs, devices and
  sockets (each file is opened non-blocking and checked with ``fstat`` before it is read). Empty class folders are
  dropped with a note there too.
* The walk is bounded: a folder nested more than ``MAX_DEPTH`` levels deep, or more than ``MAX_ENTRIES`` files and
  folders in all, ends it with a one-line ``DataError`` (not an image-class folder), so ``/`` is refused at once.
* Each image is decoded by :func:`nnsee.data.image_decode.decode_stream` (shared with the live page's uploads):
  first frame, EXIF orientation applied, transparency composited on white, 16-bit grey scaled by 1/65535, then L or
  RGB, brought to ``size`` x ``size`` by the resize rule (``square``: centre square, Lanczos; ``torchvision``:
  shorter side to ``round(size * 256 / 224)``, bilinear, then the centre crop), as float32 in [0, 1] of shape
  (C, size, size).
* Memory: the candidate files are counted first and refused past the loaders' budget (``N * C * size^2 * 4`` bytes
  over :data:`~nnsee.data.npz.MAX_IMAGE_BYTES`, 4 GiB: about 7,100 RGB images at 224 px); each image is decoded
  straight into one preallocated float32 buffer, so the peak is that buffer plus one decoded photo.
"""

from __future__ import annotations

import os
import stat
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np

from nnsee.data.image_decode import UnusableImage, check_resize, decode_stream
from nnsee.data.imageset import ImageSet, first_few
from nnsee.data.npz import MAX_IMAGE_BYTES
from nnsee.errors import DataError
from nnsee.io import file_kind

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


#: A data folder is refused, as it is scanned, once it holds more entries (files and folders, at every depth) than
#: this, or a folder nested deeper than MAX_DEPTH levels below ROOT (ROOT/<class> is level 1): ``/``, ``/usr`` or a
#: home folder is refused in about a second instead of being walked whole.
MAX_ENTRIES = 500_000
MAX_DEPTH = 6
LAYOUT = ("a data folder holds one subfolder per class with that class's images inside (ROOT/cat/1.png, "
          "ROOT/dog/2.jpg; nested folders at most {depth} levels deep, at most {entries:,} files and folders in all)")


@dataclass
class _Scan:
    """One walk of the data folder ``root`` (shown to users; ``root_real`` is its real path): what it skipped and
    how many entries it has read, checked against the caps as it goes."""

    root: Path
    root_real: str
    max_entries: int = MAX_ENTRIES
    max_depth: int = MAX_DEPTH
    skipped: list[tuple[str, str]] = field(default_factory=list)
    seen: int = 0

    def refuse(self, why: str) -> DataError:
        layout = LAYOUT.format(depth=self.max_depth, entries=self.max_entries)
        return DataError(f"{self.root}: not an image-class folder: {why}; {layout}. Point the data SPEC at such a "
                         "folder")

    def entries(self, shown: str, real: str, depth: int) -> list[os.DirEntry] | None:
        """The entries of the folder ``real`` sorted by name (None, recorded in ``skipped``, if it cannot be listed),
        counted against the caps while they are read."""
        if depth > self.max_depth:
            raise self.refuse(f"{shown} lies {depth} folder levels deep")
        found: list[os.DirEntry] = []
        try:
            with os.scandir(real) as listing:
                for entry in listing:
                    self.seen += 1
                    if self.seen > self.max_entries:
                        raise self.refuse(f"it holds more than {self.max_entries:,} files and folders")
                    found.append(entry)
        except OSError as e:
            if depth == 0:
                raise DataError(f"{self.root}: cannot list the folder: {e.strerror or e}") from None
            self.skipped.append((shown, f"cannot list folder: {e.strerror or e}"))
            return None
        return sorted(found, key=lambda e: e.name)

    def files(self, shown: str, real: str, depth: int, visited: set[str]) -> list[tuple[str, str]]:
        """(shown path, real path) of the candidate image files under the folder ``real`` (shown as ``shown``)."""
        if real in visited:
            self.skipped.append((shown, "folder already visited (symlink loop), not followed again"))
            return []
        visited.add(real)
        found: list[tuple[str, str]] = []
        for entry in self.entries(shown, real, depth) or []:
            path = os.path.join(shown, _display_name(entry.name))
            target = self.resolve(entry, path)
            if target is None:
                continue
            target_real, mode = target
            if stat.S_ISDIR(mode):
                found += self.files(path, target_real, depth + 1, visited)
            elif not stat.S_ISREG(mode):
                self.skipped.append((path, f"{file_kind(mode)}, not a regular file, ignored"))
            elif reason := _not_an_image(entry.name):
                self.skipped.append((path, reason))
            else:
                found.append((path, target_real))
        return found

    def resolve(self, entry: os.DirEntry, path: str) -> tuple[str, int] | None:
        """(real path, mode) of ``entry``, or None (recorded in ``skipped``) for hidden entries and links we must not
        use: links leaving the folder, broken links, loops, and links through folders this user cannot read."""
        if entry.name.startswith("."):
            self.skipped.append((path, "hidden file or folder, ignored"))
            return None
        try:
            if not entry.is_symlink():  # the listing's file type where it has one: no system call per entry
                if entry.is_dir(follow_symlinks=False):
                    return entry.path, stat.S_IFDIR
                if entry.is_file(follow_symlinks=False):
                    return entry.path, stat.S_IFREG
                return entry.path, entry.stat(follow_symlinks=False).st_mode
            real = os.path.realpath(entry.path)
            if not _contained(real, self.root_real):
                self.skipped.append((path, "symbolic link leading outside the data folder, not followed"))
                return None
            return real, os.stat(real).st_mode
        except PermissionError:
            why = "symbolic link through a folder this user cannot read" if entry.is_symlink() else "cannot read it"
            self.skipped.append((path, f"{why} (permission denied), ignored"))
        except OSError as e:
            why = "broken symbolic link or symlink loop" if entry.is_symlink() else "cannot read it"
            self.skipped.append((path, f"{why} ({e.strerror or e}), ignored"))
        return None


def _not_an_image(name: str) -> str:
    suffix = os.path.splitext(name)[1].lower()
    if suffix in NON_IMAGE_SUFFIXES or name in ("Thumbs.db", "desktop.ini"):
        return f"not an image file ({suffix or name}), ignored"
    return ""


def decode_image(path: str | Path, size: int = 28, grayscale: bool = True, resize: str = "square") -> np.ndarray:
    """One image file as float32 (C, size, size) in [0, 1] (rules in the module docstring; ``resize`` one of
    :data:`~nnsee.data.image_decode.RESIZE_RULES`).

    Raises ``DataError`` naming the file if it cannot be used.
    """
    check_resize(resize, error=DataError)
    try:
        return _decode(str(path), size, grayscale, resize)
    except _Skip as e:
        raise DataError(f"{path}: {e}") from None


def _open_image(path: str) -> BinaryIO:
    """``path`` opened for reading if it is a non-empty regular file; else :class:`_Skip`. It is opened with
    ``O_NONBLOCK`` and checked with ``fstat`` on the open descriptor: a FIFO or device put in its place after the
    walk is refused, never read or waited on."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except PermissionError:
        raise _Skip("cannot read the file (permission denied)") from None
    except OSError as e:
        raise _Skip(f"cannot read the file ({e.strerror or e})") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise _Skip(f"{file_kind(info.st_mode)}, not a regular file, ignored")
        if info.st_size == 0:
            raise _Skip("empty file (0 bytes)")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _decode(path: str, size: int, grayscale: bool, resize: str = "square") -> np.ndarray:
    with _open_image(path) as f:
        try:
            return decode_stream(f, size, grayscale, MAX_PIXELS, resize=resize)
        except UnusableImage as e:
            raise _Skip(str(e)) from None


def _check_budget(root: Path, files: int, channels: int, size: int) -> None:
    """Refuse, before any decoding, a folder whose candidate images at ``size`` would pass the loaders' float32
    budget (:data:`~nnsee.data.npz.MAX_IMAGE_BYTES`): ``files * channels * size * size * 4`` bytes."""
    need = files * channels * size * size * 4
    if need > MAX_IMAGE_BYTES:
        per = channels * size * size * 4
        raise DataError(
            f"{root}: {files:,} image files at {channels}x{size}x{size} would take {need / 2**30:.1f} GiB as float32, "
            f"more than the {MAX_IMAGE_BYTES / 2**30:.0f} GiB nnsee loads; use a smaller --size or at most "
            f"{MAX_IMAGE_BYTES // per:,} images"
        )


ClassFiles = list[tuple[str, str, list[tuple[str, str]]]]


def walk_folder(root: str | Path, *, max_entries: int = MAX_ENTRIES,
                max_depth: int = MAX_DEPTH) -> tuple[Path, list[tuple[str, str]], ClassFiles]:
    """(root, skipped, [(class name, class folder, [(shown path, real path) of its candidate files])]): the walk of
    ``root`` by the rules of the module docstring, nothing opened or decoded."""
    root_path = Path(root).expanduser()
    try:
        is_dir = stat.S_ISDIR(os.stat(root_path).st_mode)
    except (FileNotFoundError, NotADirectoryError):
        is_dir = False
    except OSError as e:
        raise DataError(f"{root_path}: cannot use it as a data folder: {e.strerror or e}") from None
    if not is_dir:
        raise DataError(f"{root_path}: not a folder (expected ROOT/<class name>/<image files>)")
    scan = _Scan(root_path, os.path.realpath(root_path), max_entries, max_depth)
    class_files: ClassFiles = []
    for entry in scan.entries(str(root_path), scan.root_real, 0) or []:
        path = os.path.join(root_path, _display_name(entry.name))
        target = scan.resolve(entry, path)
        if target is None:
            continue
        if stat.S_ISDIR(target[1]):
            class_files.append((_display_name(entry.name), path, scan.files(path, target[0], 1, set())))
        else:
            scan.skipped.append((path, "file at the top level, not inside a class folder"))
    return root_path, scan.skipped, class_files


def check_classes(root_path: Path, names: list[str], empty: list[str], skipped: list[tuple[str, str]]) -> None:
    """Refuse a folder with fewer than two usable classes; warn of class names equal but for case."""
    if len(names) < 2:
        found = f"{len(names)} usable class{'es' if len(names) != 1 else ''}" + (f" ({names[0]!r})" if names else "")
        details = f"; empty class folders: {first_few(empty)}" if empty else ""
        if skipped:
            details += f"; {len(skipped)} entries skipped, e.g. {skipped[0][0]}: {skipped[0][1]}"
        raise DataError(
            f"{root_path}: found {found}{details}. A folder data set needs at least 2 classes with images: "
            "put them in one subfolder per class, e.g. ROOT/cat/1.png and ROOT/dog/2.jpg"
        )


def warn_same_but_case(root_path: Path, names: list[str]) -> None:
    """Warn of class names that differ only in case (names that look the same are refused by ImageSet)."""
    folded: dict[str, list[str]] = {}
    for n in names:
        folded.setdefault(n.casefold(), []).append(n)
    same = [group for group in folded.values() if len(group) > 1]
    if same:
        warnings.warn(
            f"{root_path}: class folders whose names differ only in case are distinct classes "
            f"({len(same):,} groups): {first_few(same)}; "
            "merge or rename them if they are meant to be one class",
            stacklevel=3,
        )


def load_folder(root: str | Path, size: int = 28, grayscale: bool = True, *, max_entries: int = MAX_ENTRIES,
                max_depth: int = MAX_DEPTH, resize: str = "square",
                walked: tuple[Path, list[tuple[str, str]], ClassFiles] | None = None) -> ImageSet:
    """Images under ``root/<class>/`` as an ``ImageSet`` of shape (N, 1 or 3, size, size), each brought to ``size``
    by the rule ``resize`` (:data:`~nnsee.data.image_decode.RESIZE_RULES`); labels follow sorted names.

    Unusable files are skipped and listed in ``skipped``; raises ``DataError`` if fewer than two classes with
    usable images remain, or, as soon as it is seen, if the folder holds more than ``max_entries`` entries or
    folders nested deeper than ``max_depth`` (it is not an image-class folder). ``walked`` is the result of
    :func:`walk_folder` when the caller has walked the folder already.
    """
    if size < 1:
        raise DataError(f"size must be a positive number of pixels, got {size}")
    check_resize(resize, error=DataError)
    root_path, skipped, class_files = walked or walk_folder(root, max_entries=max_entries, max_depth=max_depth)

    channels = 1 if grayscale else 3
    total = sum(len(files) for _, _, files in class_files)
    _check_budget(root_path, total, channels, size)
    # one buffer for every candidate, filled in place (a list of images then np.stack held two copies at the peak)
    images = np.empty((total, channels, size, size), dtype=np.float32)
    labels: list[int] = []
    names: list[str] = []
    empty: list[str] = []
    n = 0
    for name, folder, files in class_files:
        start = n
        for shown, real in files:
            try:
                images[n] = _decode(real, size, grayscale, resize)
                n += 1
            except _Skip as e:
                skipped.append((shown, str(e)))
        if n == start:
            empty.append(name)
            skipped.append((folder, "class folder without usable images, dropped"))
            continue
        labels += [len(names)] * (n - start)
        names.append(name)
    if n < total:  # skipped files: shrink in place (realloc), never a second copy
        images.resize((n, channels, size, size), refcheck=False)

    check_classes(root_path, names, empty, skipped)
    data = ImageSet(images, np.array(labels, dtype=np.int64), names, str(root_path), skipped)
    warn_same_but_case(root_path, names)
    return data
