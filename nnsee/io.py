"""Atomic file writes (the bottom floor: any layer may use it): a temporary file in the same folder, fsync, then
``os.replace``.

A reader sees either the old file or the complete new one, never a half-written file. A killed process can
leave a ``.tmp-<name>-<random>`` file behind; :func:`clean_stale_tmp` removes those when a folder is next
opened for writing.

Every file nnsee reads from a run folder goes through :func:`open_regular`: it must be a
regular file, never a FIFO, device or directory, and no larger than its reader allows.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import stat
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from nnsee.errors import NnseeError, RunError

TMP_PREFIX = ".tmp-"
_CHUNK = 1 << 20
# The names _tmp_path_for gives: ".tmp-<name>-<hex>". Nothing else is ever removed as a stale temporary file.
_TMP_RE = re.compile(re.escape(TMP_PREFIX) + r".+-[0-9a-f]+")


def _tmp_path_for(path: Path) -> Path:
    return path.with_name(f"{TMP_PREFIX}{path.name}-{secrets.token_hex(6)}")


def is_tmp_name(name: str) -> bool:
    """Whether ``name`` is one this module gives its temporary files (``.tmp-<name>-<hex>``)."""
    return _TMP_RE.fullmatch(name) is not None


def fsync_dir(folder: Path) -> None:
    """Make the rename itself durable (best effort: not every OS lets a folder be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _remove_quietly(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()


def _write_failed(path: Path, exc: OSError) -> RunError:
    reason = exc.strerror or str(exc)
    state = "the previous file is intact" if path.exists() else "nothing was written there"
    return RunError(f"could not write {path}: {reason} (errno {exc.errno}); {state}")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on a clean exit, fsync it and move it onto ``path``.

    The body writes the temporary file (and may close it). On any exception, KeyboardInterrupt included, the
    temporary file is removed and ``path`` is left as it was; an ``OSError`` (ENOSPC, EACCES, ...) becomes a
    :class:`RunError` naming ``path``.
    """
    path = Path(path)
    tmp = _tmp_path_for(path)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        _remove_quietly(tmp)
        raise _write_failed(path, exc) from exc
    except BaseException:
        _remove_quietly(tmp)
        raise
    fsync_dir(path.parent)


def atomic_write(path: str | os.PathLike[str], write_fn: Callable[[Path], object]) -> Path:
    """Call ``write_fn(tmp_path)`` to write the content, then atomically move it onto ``path``."""
    with atomic_path(path) as tmp:
        write_fn(tmp)
    return Path(path)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes | bytearray | memoryview) -> Path:
    """Atomically replace ``path`` with ``data``."""
    view = memoryview(data).cast("B")

    def write(tmp: Path) -> None:
        with open(tmp, "xb") as f:
            for start in range(0, len(view), _CHUNK):
                f.write(view[start : start + _CHUNK])

    return atomic_write(path, write)


def atomic_write_text(path: str | os.PathLike[str], text: str, encoding: str = "utf-8") -> Path:
    """Atomically replace ``path`` with ``text``."""
    return atomic_write_bytes(path, text.encode(encoding))


def file_kind(mode: int) -> str:
    """A file mode in words: 'a directory', 'a FIFO (named pipe)', 'a device' ..."""
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _not_regular(path: Path, what: str, mode: int, error: type[NnseeError]) -> NnseeError:
    fix = ("put the file nnsee wrote back in its place, or train again" if error is RunError
           else "give the file itself, not a pipe, device or folder")
    return error(f"could not read {path} ({what}): it is {file_kind(mode)}, not a regular file, and nnsee reads only "
                 f"regular files; {fix}")


def open_regular(path: str | os.PathLike[str], what: str, *, max_bytes: int | None = None,
                 error: type[NnseeError] = RunError) -> BinaryIO:
    """Open ``path`` for reading if it is a regular file of at most ``max_bytes``; else a one-line ``error``
    (:class:`RunError` by default: a run folder's files; a data set's readers pass :class:`DataError`).

    The file is opened with ``O_NONBLOCK`` (a FIFO swapped in after a check cannot block the open) and checked with
    ``fstat`` on the open descriptor, so what is read is what was checked, and the open never blocks. A symbolic
    link is followed wherever it points, inside the folder or out of it, as long as it ends at a regular file: never
    at a FIFO, a device, a socket or a directory. A missing file raises ``FileNotFoundError``.
    """
    path = Path(path)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise
    except IsADirectoryError:
        raise _not_regular(path, what, stat.S_IFDIR, error) from None
    except OSError as exc:
        raise error(f"could not read {path} ({what}): {exc.strerror or exc}") from exc
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise _not_regular(path, what, info.st_mode, error)
        if max_bytes is not None and info.st_size > max_bytes:
            raise error(f"{path} ({what}) is {info.st_size:,} bytes, more than the {max_bytes:,} nnsee reads"
                        + ("; it was not written by nnsee" if error is RunError else ""))
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def clean_stale_tmp(folder: str | os.PathLike[str], *, subfolders: Iterable[str] = ("snapshots",)) -> list[Path]:
    """Remove the temporary files a killed writer left in ``folder`` and its ``subfolders``; return them.

    Only names this module gives (``.tmp-<name>-<hex>``) are removed, only in ``folder`` itself and in the named
    subfolders (by default a run folder's ``snapshots/``; a subfolder that is a symbolic link is skipped): no
    other subfolder is walked. Call it only when this process is the folder's writer: another writer's file in
    progress would be removed.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    places = [folder] + [folder / name for name in subfolders if (folder / name).is_dir()
                         and not (folder / name).is_symlink()]
    found = sorted(p for place in places for p in place.iterdir() if is_tmp_name(p.name))
    return remove_files([p for p in found if p.is_file() or p.is_symlink()], "the stale temporary file")


def remove_files(files: Iterable[Path], what: str) -> list[Path]:
    """Unlink each of ``files`` (a link itself, never its target); return those removed (a vanished one is skipped).
    A failure is a :class:`RunError` naming the file as ``what``."""
    removed = []
    for file in files:
        try:
            file.unlink()
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise RunError(f"could not remove {what} {file}: {exc.strerror or exc}") from exc
        removed.append(file)
    return removed
