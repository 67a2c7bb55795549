"""Hostile input to the streamed readers: gzip bombs and short streams into the cache, an unwritable cache, a file
swapped for a FIFO after the scan, a file that shrank since it was loaded. Each is one line, in bounded time, and
leaves nothing in the cache that could be taken for a result."""

from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path

import pytest
from photos import photo_folder

from nnsee.data import load_data
from nnsee.data.loader import batches
from nnsee.errors import DataError


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("NNSEE_CACHE", str(tmp_path / "stream-cache"))
    return tmp_path / "stream-cache"


def _head(code: int, *dims: int) -> bytes:
    return bytes([0, 0, code, len(dims)]) + struct.pack(f">{len(dims)}I", *dims)


def _pair(folder: Path, images: bytes, n: int) -> Path:
    folder.mkdir()
    (folder / "train-images-idx3-ubyte.gz").write_bytes(images)
    (folder / "train-labels-idx1-ubyte").write_bytes(_head(0x08, n) + bytes(i % 2 for i in range(n)))
    return folder


@pytest.mark.parametrize(("payload", "says"), [
    (bytes(20 << 20), "extra bytes after the data"),  # declares 1,000 bytes, holds 20 MB of zeros
    (bytes(500), "only 500 bytes"),  # declares 1,000 bytes, holds 500
])
def test_a_gzip_bomb_or_short_stream_is_refused_and_leaves_no_cache(tmp_path: Path, cache: Path, payload: bytes,
                                                                    says: str) -> None:
    folder = _pair(tmp_path / "idx", gzip.compress(_head(0x08, 10, 10, 10) + payload, compresslevel=1), 10)
    with pytest.raises(DataError, match=says) as info:
        load_data(str(folder), stream=True)
    assert "\n" not in str(info.value)
    assert not cache.exists() or list(cache.iterdir()) == []  # the temporary copy was removed


def test_an_unwritable_cache_is_one_line(tmp_path: Path, h, monkeypatch: pytest.MonkeyPatch) -> None:
    h.tiny_idx_set(tmp_path / "idx", gz=True)
    (tmp_path / "not-a-folder").write_text("a file where the cache folder should be")
    monkeypatch.setenv("NNSEE_CACHE", str(tmp_path / "not-a-folder"))
    with pytest.raises(DataError, match="cannot keep its decompressed copy for streaming .* set NNSEE_CACHE") as info:
        load_data(str(tmp_path / "idx"), stream=True)
    assert "\n" not in str(info.value)
    assert not load_data(str(tmp_path / "idx"), stream=False).train.streamed  # in memory needs no cache


def test_a_file_swapped_for_a_fifo_after_the_scan_is_skipped_never_waited_on(tmp_path: Path, cache: Path) -> None:
    root = photo_folder(tmp_path / "p", 3, 24)
    data = load_data(str(root), stream=True, val_fraction=0, test_fraction=0).train
    victim = data.images.source.real[data.images.index[0]]
    os.unlink(victim)
    os.mkfifo(victim)
    got = list(batches(data, 4))
    skipped = [s for b in got for s in b.skipped]
    assert [(p, Path(path).name) for p, path, _ in skipped] == [(0, Path(victim).name)]
    assert "not a regular file" in skipped[0][2]
    assert sum(len(b.index) for b in got) == len(data) - 1


def test_an_idx_file_that_shrank_since_loading_is_one_line(tmp_path: Path, h, cache: Path) -> None:
    h.tiny_idx_set(tmp_path / "idx", gz=False)
    data = load_data(str(tmp_path / "idx"), stream=True).train
    path = tmp_path / "idx" / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(DataError, match="changed since it was loaded") as info:
        data.images[:3]
    assert "\n" not in str(info.value)
