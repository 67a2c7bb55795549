"""Named sets: search order, helpful failure, sha256 of decompressed content, and the pooch download path."""

from __future__ import annotations

import hashlib
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from nnsee.data import named
from nnsee.data.named import IDX_FILES, NamedSet, load_idx_folder, load_named
from nnsee.errors import DataError

DEBIAN = Path("/usr/share/datasets/fashion-mnist")


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """No NNSEE_DATA/NNSEE_MIRROR from the environment, an empty Debian folder, a cache in tmp_path."""
    monkeypatch.delenv("NNSEE_MIRROR", raising=False)
    monkeypatch.setenv("NNSEE_DATA", str(tmp_path / "cache"))
    monkeypatch.setattr(named, "DEBIAN_DATASETS", tmp_path / "debian")
    return tmp_path


@pytest.fixture
def tiny_named(h, tmp_path, monkeypatch):
    """Register a named set 'tiny' whose sha256 values are those of files written to tmp_path/'source'."""
    arrays = h.tiny_idx_set(tmp_path / "source")
    sha = {name: hashlib.sha256(h.idx_bytes(arr)).hexdigest() for name, arr in arrays.items()}
    ds = NamedSet("tiny", ("a", "b", "c"), sha, ("http://127.0.0.1:9/",), "or apt-get install tiny")
    monkeypatch.setitem(named.NAMED_SETS, "tiny", ds)
    return tmp_path / "source", arrays


def test_data_dir_direct_and_subfolder(isolated, tiny_named):
    source, arrays = tiny_named
    train, test = load_named("tiny", data_dir=source, download=False)
    assert len(train) == 30 and len(test) == 10 and train.class_names == ["a", "b", "c"]
    np.testing.assert_allclose(train.images[:, 0] * 255, arrays["train-images-idx3-ubyte"], atol=1e-4)
    nested = isolated / "nested"
    shutil.copytree(source, nested / "tiny")
    assert len(load_named("tiny", data_dir=nested, download=False)[0]) == 30


def test_search_order_env_then_debian_then_cache(isolated, tiny_named, monkeypatch):
    source, _ = tiny_named
    debian = isolated / "debian" / "tiny"
    shutil.copytree(source, debian)
    assert len(load_named("tiny", download=False)[0]) == 30  # found in the Debian folder
    monkeypatch.setenv("NNSEE_DATA", str(source))
    (debian / "train-labels-idx1-ubyte.gz").write_bytes(b"broken")  # NNSEE_DATA comes first: never read
    assert len(load_named("tiny", download=False)[0]) == 30


def test_local_checksum_mismatch(isolated, tiny_named, h):
    source, arrays = tiny_named
    bad = arrays["train-images-idx3-ubyte"].copy()
    bad[0, 0, 0] ^= 1  # same size, one bit different
    h.write_idx(source / "train-images-idx3-ubyte.gz", bad)
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte\.gz: sha256 of the decompressed content"):
        load_named("tiny", data_dir=source, download=False)
    assert (source / "train-images-idx3-ubyte.gz").exists()  # a user's file is never deleted


def test_not_found_says_where_and_how(isolated):
    with pytest.raises(DataError) as e:
        load_named("fashion-mnist", download=False)
    msg = str(e.value)
    for part in ("train-images-idx3-ubyte.gz", "--data-dir", "NNSEE_DATA", "apt-get install dataset-fashion-mnist",
                 str(isolated / "debian" / "fashion-mnist"), "download was turned off"):
        assert part in msg, msg


def test_unknown_name():
    with pytest.raises(DataError, match="must be one of fashion-mnist, mnist"):
        load_named("cifar")


def test_download_from_loopback_mirror(isolated, tiny_named, http_root):
    source, _ = tiny_named
    root, url = http_root
    for f in source.iterdir():
        shutil.copy(f, root / f.name)
    train, test = load_named("tiny", mirror=url)
    assert len(train) == 30 and len(test) == 10
    cache = isolated / "cache" / "tiny"
    assert sorted(p.name for p in cache.iterdir()) == sorted(f"{n}.gz" for n in IDX_FILES)
    for f in root.iterdir():
        f.unlink()
    assert len(load_named("tiny", download=False)[0]) == 30  # now served from the cache


def test_download_mirror_from_env(isolated, tiny_named, http_root, monkeypatch):
    source, _ = tiny_named
    root, url = http_root
    for f in source.iterdir():
        shutil.copy(f, root / f.name)
    monkeypatch.setenv("NNSEE_MIRROR", url)
    assert len(load_named("tiny")[1]) == 10


def test_download_checksum_mismatch_deletes_and_explains(isolated, tiny_named, http_root, h):
    source, arrays = tiny_named
    root, url = http_root
    for f in source.iterdir():
        shutil.copy(f, root / f.name)
    bad = arrays["t10k-labels-idx1-ubyte"].copy()
    bad[-1] = (bad[-1] + 1) % 3
    h.write_idx(root / "t10k-labels-idx1-ubyte.gz", bad)
    with pytest.raises(DataError) as e:
        load_named("tiny", mirror=url)
    msg = str(e.value)
    assert "t10k-labels-idx1-ubyte.gz" in msg and "sha256" in msg and "deleted" in msg
    assert not (isolated / "cache" / "tiny" / "t10k-labels-idx1-ubyte.gz").exists()


def test_download_failure_lists_mirror(isolated, tiny_named, http_root):
    _, url = http_root  # serves nothing: 404
    with pytest.raises(DataError) as e:
        load_named("tiny", mirror=url)
    msg = str(e.value)
    assert "download failed" in msg and url in msg and "404" in msg and "--data-dir" in msg


def test_idx_folder_with_and_without_test(h, tmp_path):
    h.tiny_idx_set(tmp_path / "full", gz=False)
    train, test = load_idx_folder(tmp_path / "full")
    assert train.class_names == ["0", "1", "2"] and len(test) == 10
    h.tiny_idx_set(tmp_path / "trainonly", test=False)
    (tmp_path / "trainonly" / "classes.txt").write_text("cat\ndog\nemu\n")
    train, test = load_idx_folder(tmp_path / "trainonly")
    assert test is None and train.class_names == ["cat", "dog", "emu"]
    (tmp_path / "half").mkdir()
    shutil.copy(tmp_path / "full" / "train-images-idx3-ubyte", tmp_path / "half")
    shutil.copy(tmp_path / "full" / "train-labels-idx1-ubyte", tmp_path / "half")
    shutil.copy(tmp_path / "full" / "t10k-images-idx3-ubyte", tmp_path / "half")
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte"):
        load_idx_folder(tmp_path / "half")


def test_known_checksums_are_well_formed():
    for ds in named.NAMED_SETS.values():
        assert set(ds.sha256) == set(IDX_FILES) and len(ds.class_names) == 10
        assert all(len(v) == 64 and int(v, 16) >= 0 for v in ds.sha256.values())


@pytest.mark.slow
@pytest.mark.skipif(not DEBIAN.is_dir(), reason="needs apt-get install dataset-fashion-mnist")
def test_real_fashion_mnist(monkeypatch):
    monkeypatch.delenv("NNSEE_DATA", raising=False)
    t = time.perf_counter()
    train, test = load_named("fashion-mnist", download=False)
    elapsed = time.perf_counter() - t
    assert train.images.shape == (60000, 1, 28, 28) and test.images.shape == (10000, 1, 28, 28)
    assert train.class_counts().tolist() == [6000] * 10 and test.class_counts().tolist() == [1000] * 10
    assert train.class_names[0] == "T-shirt/top" and train.images.min() >= 0.0 and train.images.max() == 1.0
    print(f"fashion-mnist loaded and verified in {elapsed:.2f} s")


@pytest.mark.slow
@pytest.mark.skipif(not DEBIAN.is_dir(), reason="needs apt-get install dataset-fashion-mnist")
def test_real_fashion_mnist_over_loopback(isolated, http_root):
    root, url = http_root
    for f in DEBIAN.iterdir():
        shutil.copy(f, root / f.name)
    train, test = load_named("fashion-mnist", mirror=url)
    assert len(train) == 60000 and len(test) == 10000
