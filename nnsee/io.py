"""Atomic file writes (the bottom floor: any layer may use it): a temporary file in the same folder, fsync, then
``os.replace``.

A reader sees either the old file or the complete new one, never a half-written file. A killed process can
leave a ``.tmp-<name>-<random>`` file behind; :func:`clean_stale_tmp` removes those when a folder is next
opened for writing.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

from nnsee.errors import RunError

TMP_PREFIX = ".tmp-"
_CHUNK = 1 << 20


def _tmp_path_for(path: Path) -> Path:
    return path.with_name(f"{TMP_PREFIX}{path.name}-{secrets.token_hex(6)}")


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


def clean_stale_tmp(folder: str | os.PathLike[str], *, recursive: bool = True) -> list[Path]:
    """Remove ``.tmp-*`` files left in ``folder`` (and its sub-folders) by a killed writer; return them.

    Call it only when this process is the folder's writer: another writer's file in progress would be removed.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    pattern = f"**/{TMP_PREFIX}*" if recursive else f"{TMP_PREFIX}*"
    removed = []
    for tmp in sorted(folder.glob(pattern)):
        if tmp.is_file() or tmp.is_symlink():
            try:
                tmp.unlink()
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise RunError(f"could not remove the stale temporary file {tmp}: {exc.strerror or exc}") from exc
            removed.append(tmp)
    return removed
