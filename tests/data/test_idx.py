"""IDX reading: round trips, and every malformed header / size / gzip fault gives a DataError naming the file."""

from __future__ import annotations

import gzip
import struct
import time
import tracemalloc

import numpy as np
import pytest

from nnsee.data.idx import load_idx_pair, read_idx
from nnsee.errors import DataError


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
@pytest.mark.parametrize("ext", ["", ".gz"])
def test_round_trip_every_dtype(h, tmp_path, dtype, ext):
    arr = (np.arange(2 * 3 * 4) - 5).astype(dtype).reshape(2, 3, 4)
    out = read_idx(h.write_idx(tmp_path / f"a-idx3{ext}", arr))
    assert out.dtype == np.dtype(dtype).newbyteorder("=") and out.dtype.isnative
    np.testing.assert_array_equal(out, arr)
    out[0, 0, 0] = 1  # a writable copy


def test_mnist_header_layout(h, tmp_path):
    # 0x00000803 = ubyte, 3 dims: the MNIST image file header, then 2x2x2 bytes
    raw = struct.pack(">IIII", 0x803, 2, 2, 2) + bytes(range(8))
    np.testing.assert_array_equal(read_idx(h.write_bytes(tmp_path / "x", raw)), np.arange(8).reshape(2, 2, 2))


def raises_naming(path, *words):
    with pytest.raises(DataError) as e:
        read_idx(path)
    msg = str(e.value)
    assert path.name in msg, msg
    for w in words:
        assert w in msg, msg
    return msg


@pytest.mark.parametrize("ext", ["", ".gz"])
def test_nonzero_magic(h, tmp_path, ext):
    raw = bytearray(h.idx_bytes(np.zeros((2, 2), np.uint8)))
    raw[0] = 1
    raises_naming(h.write_bytes(tmp_path / f"bad-magic{ext}", bytes(raw)), "first two bytes must be zero")


@pytest.mark.parametrize("ext", ["", ".gz"])
def test_unknown_dtype_code(h, tmp_path, ext):
    raw = bytearray(h.idx_bytes(np.zeros((2, 2), np.uint8)))
    raw[2] = 0x07
    raises_naming(h.write_bytes(tmp_path / f"bad-code{ext}", bytes(raw)), "unknown IDX dtype code 0x07")


def test_ndim_larger_than_header(h, tmp_path):
    raw = bytes([0, 0, 8, 5]) + struct.pack(">I", 3)  # declares 5 dims, holds one
    raises_naming(h.write_bytes(tmp_path / "short-header", raw), "ndim=5")


@pytest.mark.parametrize("ext", ["", ".gz"])
def test_ndim_disagrees_with_dims(h, tmp_path, ext):
    # header says 1 dim of 12, but the data was written as 3x4 with ndim 2: sizes then disagree with the payload
    good = h.idx_bytes(np.zeros((3, 4), np.uint8))
    raw = bytes([0, 0, 8, 1]) + good[4:]
    raises_naming(h.write_bytes(tmp_path / f"ndim{ext}", raw), "declares")
    raw = bytes([0, 0, 8, 3]) + good[4:]  # 3 dims: reads a payload byte as a size
    raises_naming(h.write_bytes(tmp_path / f"ndim3{ext}", raw))
    raw = bytes([0, 0, 8, 0]) + good[4:]
    raises_naming(h.write_bytes(tmp_path / f"ndim0{ext}", raw), "ndim=0")


@pytest.mark.parametrize("ext", ["", ".gz"])
def test_truncated_and_extra_payload(h, tmp_path, ext):
    good = h.idx_bytes(np.zeros((4, 5), np.uint8))
    raises_naming(h.write_bytes(tmp_path / f"truncated{ext}", good[:-3]), "truncated")
    extra = h.write_bytes(tmp_path / f"extra{ext}", good + b"\0\0")
    raises_naming(extra, "extra bytes" if ext else "truncated or extra")


def test_too_short_for_a_header(h, tmp_path):
    raises_naming(h.write_bytes(tmp_path / "tiny", b"\0\0"), "at least 4")
    raises_naming(h.write_bytes(tmp_path / "empty", b""))


@pytest.mark.parametrize("ext", ["", ".gz"])
def test_absurd_sizes_refused_before_allocating(h, tmp_path, ext):
    raw = bytes([0, 0, 0x0E, 3]) + struct.pack(">III", 2**32 - 1, 2**32 - 1, 2**32 - 1) + b"\0" * 64
    path = h.write_bytes(tmp_path / f"huge{ext}", raw)
    tracemalloc.start()
    t = time.perf_counter()
    raises_naming(path, "declares")
    elapsed = time.perf_counter() - t
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert elapsed < 0.5 and peak < 5 * 2**20


def test_large_claim_in_small_gzip_stops_streaming(h, tmp_path):
    # plausible for the compression ratio, but the stream ends early: read chunk by chunk, never a 50 MB buffer
    noise = np.random.default_rng(0).integers(0, 256, 100_000, dtype=np.uint8).tobytes()  # incompressible
    path = h.write_bytes(tmp_path / "liar.gz", bytes([0, 0, 8, 1]) + struct.pack(">I", 50_000_000) + noise)
    tracemalloc.start()
    raises_naming(path, "decompressed file has only")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 10 * 2**20


def test_truncated_gzip(h, tmp_path):
    rng = np.random.default_rng(0)
    data = gzip.compress(h.idx_bytes(rng.integers(0, 256, (50, 28, 28), dtype=np.uint8)))
    path = tmp_path / "cut.gz"
    path.write_bytes(data[: len(data) // 2])
    raises_naming(path, "truncated", "download it again")


def test_gzip_bad_crc(h, tmp_path):
    data = bytearray(gzip.compress(h.idx_bytes(np.arange(100, dtype=np.uint8).reshape(10, 10))))
    data[-8] ^= 0xFF  # the CRC32 of the trailer
    path = tmp_path / "crc.gz"
    path.write_bytes(bytes(data))
    raises_naming(path, "CRC")


def test_not_gzip_but_named_gz(h, tmp_path):
    path = tmp_path / "plain-idx1-ubyte.gz"
    path.write_bytes(h.idx_bytes(np.arange(10, dtype=np.uint8)))
    raises_naming(path, "not valid gzip")


def test_corrupt_deflate_stream(h, tmp_path):
    data = bytearray(gzip.compress(h.idx_bytes(np.arange(1000, dtype=np.int32))))
    data[12:20] = b"\xff" * 8
    path = tmp_path / "deflate.gz"
    path.write_bytes(bytes(data))
    raises_naming(path)


def test_missing_file(tmp_path):
    raises_naming(tmp_path / "nope", "no such file")


def test_sha256_checked(h, tmp_path):
    import hashlib

    raw = h.idx_bytes(np.arange(10, dtype=np.uint8))
    path = h.write_bytes(tmp_path / "l.gz", raw)
    read_idx(path, sha256=hashlib.sha256(raw).hexdigest())
    with pytest.raises(DataError, match="sha256"):
        read_idx(path, sha256="0" * 64)


# --- image + label pairs ---------------------------------------------------------------------------------------


def test_pair_scales_and_shapes(h, tmp_path):
    imgs = np.array([[[0, 255], [51, 102]]] * 3, np.uint8)
    h.write_idx(tmp_path / "i.gz", imgs)
    h.write_idx(tmp_path / "l.gz", np.array([0, 2, 1], np.uint8))
    data = load_idx_pair(tmp_path / "i.gz", tmp_path / "l.gz", ["a", "b", "c"])
    assert data.images.shape == (3, 1, 2, 2) and data.images.dtype == np.float32
    np.testing.assert_allclose(data.images[0, 0], [[0, 1], [0.2, 0.4]], rtol=1e-6)
    assert data.labels.tolist() == [0, 2, 1] and data.class_names == ["a", "b", "c"]
    assert load_idx_pair(tmp_path / "i.gz", tmp_path / "l.gz").class_names == ["0", "1", "2"]


def test_pair_label_count_mismatch_refused_before_reading_images(h, tmp_path):
    rng = np.random.default_rng(0)
    data = gzip.compress(h.idx_bytes(rng.integers(0, 256, (200, 28, 28), dtype=np.uint8)))
    (tmp_path / "images.gz").write_bytes(data[: len(data) // 2])  # payload broken: must never be read
    h.write_idx(tmp_path / "labels.gz", np.zeros(199, np.uint8))
    with pytest.raises(DataError, match=r"labels\.gz: 199 labels but images\.gz holds 200 images"):
        load_idx_pair(tmp_path / "images.gz", tmp_path / "labels.gz")


def test_pair_label_values_out_of_range(h, tmp_path):
    h.write_idx(tmp_path / "i", np.zeros((3, 2, 2), np.uint8))
    h.write_idx(tmp_path / "l", np.array([0, 1, 10], np.uint8))
    with pytest.raises(DataError, match=r"l: holds label 10 but class_names has only 10 names"):
        load_idx_pair(tmp_path / "i", tmp_path / "l", [str(i) for i in range(10)])


def test_pair_wrong_ndim(h, tmp_path):
    h.write_idx(tmp_path / "i", np.zeros((3, 4), np.uint8))
    h.write_idx(tmp_path / "l", np.zeros(3, np.uint8))
    with pytest.raises(DataError, match="i: expected an IDX image file of shape"):
        load_idx_pair(tmp_path / "i", tmp_path / "l")
    h.write_idx(tmp_path / "i", np.zeros((3, 4, 4), np.uint8))
    h.write_idx(tmp_path / "l", np.zeros((3, 1), np.uint8))
    with pytest.raises(DataError, match="l: expected an IDX label file"):
        load_idx_pair(tmp_path / "i", tmp_path / "l")
