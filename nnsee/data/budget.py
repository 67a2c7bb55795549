"""The memory budget that decides whether a data set is decoded whole or streamed (``--max-memory``).

``default_max_memory()`` is half of the memory available now: ``MemAvailable`` of ``/proc/meminfo`` (where there is
no such file, the free physical memory from ``os.sysconf``; 2 GiB in all if neither answers), or less where the
process's cgroup (v2, a container's limit) leaves less: ``memory.max - memory.current``. ``parse_size`` reads sizes
such as ``256M`` or ``2G``: binary units (K = 1024 bytes, M = 1024 K, G, T), a bare number is bytes.
"""

from __future__ import annotations

import os
import re

from nnsee.errors import DataError

_UNITS = {"": 1, "B": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
_SIZE = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([KMGT]?)(?:I?B)?\s*", re.IGNORECASE)
_FALLBACK = 2 << 30


#: The cgroup v2 folder of this process's memory limit (a container's); read only if it exists.
CGROUP = "/sys/fs/cgroup"


def _cgroup_room() -> int | None:
    """``memory.max - memory.current`` of this cgroup (v2), or None where there is no limit or no such file."""
    try:
        with open(os.path.join(CGROUP, "memory.max"), encoding="ascii") as f:
            limit = f.read().strip()
        if limit == "max":
            return None
        with open(os.path.join(CGROUP, "memory.current"), encoding="ascii") as f:
            return max(0, int(limit) - int(f.read().strip()))
    except (OSError, ValueError):
        return None


def _available() -> int | None:
    room = _cgroup_room()
    host = _host_available()
    return min(x for x in (room, host) if x is not None) if (room, host) != (None, None) else None


def _host_available() -> int | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def default_max_memory() -> int:
    """Half of the memory available now, in bytes (rule in the module docstring)."""
    available = _available()
    return max(1, available // 2) if available else _FALLBACK


def parse_size(text: str | int) -> int:
    """Bytes from ``text`` (``256M``, ``2G``, ``1.5G``, ``4096``; K/M/G/T are binary units), a positive whole number.
    Anything else is a one-line DataError saying the form expected."""
    if isinstance(text, int) and not isinstance(text, bool):
        value = text
    else:
        found = _SIZE.fullmatch(str(text))
        if found is None:
            raise DataError(f"--max-memory takes a size such as 256M, 2G or 1.5G (K, M, G, T: binary units; a bare "
                            f"number is bytes), got {str(text)[:40]!r}")
        value = int(float(found.group(1)) * _UNITS[found.group(2).upper()])
    if value < 1:
        raise DataError(f"--max-memory must be a positive size such as 256M or 2G, got {str(text)[:40]!r}")
    return value


def format_size(n: int) -> str:
    """``n`` bytes for people: ``1.5 GiB``, ``256 MiB``, ``12 KiB``, ``100 bytes``."""
    for unit, name in ((1 << 40, "TiB"), (1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")):
        if n >= unit:
            return f"{n / unit:.3g} {name}"
    return f"{n:,} bytes"
