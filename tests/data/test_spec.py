"""The SPEC parser: every accepted form, reproducible splits from Splits.spec, describe(), clear refusals."""

from __future__ import annotations

import hashlib
import json
import os

import numpy as np
import pytest
from PIL import Image

from nnsee.data import describe, load_data, load_splits, named
from nnsee.data.named import NamedSet
from nnsee.errors import DataError


def same_splits(a, b):
    for x, y in ((a.train, b.train), (a.val, b.val), (a.test, b.test)):
        np.testing.assert_array_equal(x.images, y.images)
        np.testing.assert_array_equal(x.labels, y.labels)
        assert x.class_names == y.class_names


def test_digits_spec_round_trip():
    s = load_data("digits", seed=1)
    assert s.spec["spec"] == "digits" and s.spec["counts"] == {"train": 4000, "val": 500, "test": 500}
    back = load_splits(json.loads(json.dumps(s.spec)))
    same_splits(s, back)
    other = load_data("digits", seed=2)
    assert not np.array_equal(other.val.images, s.val.images)


def test_folder_spec_absolute_and_reproducible(tmp_path, monkeypatch):
    for cls, blue in (("a", 0), ("b", 255)):
        (tmp_path / "imgs" / cls).mkdir(parents=True)
        for i in range(5):
            Image.new("RGB", (10, 12), (i * 40, 0, blue)).save(tmp_path / "imgs" / cls / f"{i}.png")
    (tmp_path / "imgs" / "a" / "notes.txt").write_text("x")
    monkeypatch.chdir(tmp_path)
    s = load_data("imgs", size=8, grayscale=False, seed=5, val_fraction=0.2, test_fraction=0.2)
    assert s.spec["spec"] == str(tmp_path / "imgs") and os.path.isabs(s.spec["spec"])
    assert s.shape == (3, 8, 8) and s.spec["kind"] == "folder"
    monkeypatch.chdir("/")
    same_splits(s, load_splits(json.loads(json.dumps(s.spec))))
    d = describe(s)
    assert d["skipped"] == 1 and d["skipped_examples"][0]["reason"].startswith("not an image")
    json.dumps(d)


def test_npz_and_conform(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "d.npz", x=rng.integers(0, 256, (30, 16, 16, 3), dtype=np.uint8), y=np.arange(30) % 3)
    s = load_data(str(tmp_path / "d.npz"))
    assert s.shape == (3, 16, 16) and s.spec["kind"] == "npz" and len(s.train) + len(s.val) + len(s.test) == 30
    g = load_data(str(tmp_path / "d.npz"), size=8, grayscale=True)
    assert g.shape == (1, 8, 8)
    full = load_data(str(tmp_path / "d.npz"), size=16, grayscale=True)
    rgb = s.train.images.astype(np.float64)
    luma = 0.299 * rgb[:, 0] + 0.587 * rgb[:, 1] + 0.114 * rgb[:, 2]
    np.testing.assert_allclose(full.train.images[:, 0], luma, atol=1e-6)
    same_splits(g, load_splits(g.spec))


def test_idx_folder_spec(h, tmp_path):
    h.tiny_idx_set(tmp_path / "with-test")
    s = load_data(str(tmp_path / "with-test"), val_fraction=0.2)
    assert s.spec["kind"] == "idx" and s.spec["official_test"] and len(s.test) == 10 and len(s.val) == 6
    h.tiny_idx_set(tmp_path / "train-only", test=False)
    s = load_data(str(tmp_path / "train-only"))
    assert not s.spec["official_test"] and len(s.test) == 3
    same_splits(s, load_splits(s.spec))


def test_named_spec_keeps_official_test(h, tmp_path, monkeypatch):
    arrays = h.tiny_idx_set(tmp_path / "src", n_train=60)
    sha = {k: hashlib.sha256(h.idx_bytes(v)).hexdigest() for k, v in arrays.items()}
    monkeypatch.setitem(named.NAMED_SETS, "tiny", NamedSet("tiny", ("x", "y", "z"), sha, ()))
    s = load_data("TINY", data_dir=tmp_path / "src", download=False, val_fraction=0.1, test_fraction=0.5)
    assert s.spec["spec"] == "tiny" and s.spec["data_dir"] == str(tmp_path / "src")
    assert (len(s.train), len(s.val), len(s.test)) == (54, 6, 10)
    same_splits(s, load_splits(s.spec, download=False))
    d = describe(s)
    assert d["n"] == 70 and d["classes"] == ["x", "y", "z"] and d["shape"] == [1, 5, 5]
    assert d["splits"] == {"train": 54, "val": 6, "test": 10}
    assert d["class_counts"][0] == {"class": "x", "train": 18, "val": 2, "test": 4}
    every = np.concatenate([part.images.ravel() for part in (s.train, s.val, s.test)])
    assert d["pixel_range"] == [float(every.min()), float(every.max())] and d["source"] == "tiny"


def test_unknown_spec_lists_forms(tmp_path):
    with pytest.raises(DataError) as e:
        load_data("cifar-10")
    msg = str(e.value)
    for form in ("'cifar-10'", "digits", "fashion-mnist", "mnist", ".npz", "class subfolders", "IDX"):
        assert form in msg, msg
    (tmp_path / "data.csv").write_text("1,2\n")
    with pytest.raises(DataError, match=r"data\.csv: unsupported data file"):
        load_data(str(tmp_path / "data.csv"))


def test_load_splits_refuses_bad_records(tmp_path):
    with pytest.raises(DataError, match="'spec' field"):
        load_splits({"kind": "digits"})
    with pytest.raises(DataError, match="newer"):
        load_splits({"spec": "digits", "format": 99})
    s = load_data("digits")
    record = dict(s.spec, counts={"train": 1, "val": 1, "test": 1})
    with pytest.warns(UserWarning, match="changed"):
        load_splits(record)
