"""A streamed folder with files that became unreadable mid-way: skipped, counted and named; the pass goes on and
every readable image gets the in-memory result."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from photos import photo_folder

from nnsee.analysis import analyze
from nnsee.analysis.accumulators import differences
from nnsee.analysis.identity import data_fingerprint
from nnsee.data import load_data
from nnsee.models import build_model


def test_unreadable_files_mid_way_are_skipped_counted_and_named(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NNSEE_CACHE", str(tmp_path / "cache"))
    root = photo_folder(tmp_path / "photos", 12, 16)
    memory = load_data(str(root), stream=False, val_fraction=0, test_fraction=0).train
    streamed = load_data(str(root), stream=True, val_fraction=0, test_fraction=0).train
    assert streamed.streamed and len(streamed) == len(memory)
    same, mine = data_fingerprint(memory), data_fingerprint(streamed)
    assert mine["files"] is not None and same["files"] is None  # known only where the files are read
    assert differences(same, mine) == []  # a resume or a report may read the set the other way
    torch.manual_seed(0)
    model = build_model("cnn", memory.shape, memory.n_classes, channels=[4], kernel=3)
    whole = analyze(model, memory, tmp_path / "memory", layers=["conv1"], k=3, methods=["saliency"], batch_size=8)
    broken = [5, 17]  # in the first and the third batch
    for position in broken:
        Path(streamed.images.source.real[streamed.images.index[position]]).write_bytes(b"not an image")
    got = analyze(model, streamed, tmp_path / "streamed", layers=["conv1"], k=3, methods=["saliency"], batch_size=8)
    s, w = got.summary, whole.summary
    assert s["n"] == len(memory) - 2 and s["n_skipped"] == 2
    assert [item["index"] for item in s["skipped"]] == broken
    assert all(Path(item["path"]).exists() and item["reason"] for item in s["skipped"])
    assert [s["predictions"][p] for p in broken] == [None, None]
    kept = np.setdiff1d(np.arange(len(memory)), broken)
    assert [s["predictions"][p] for p in kept] == [w["predictions"][p] for p in kept]
    np.testing.assert_allclose(got.probabilities()[kept], whole.probabilities()[kept], rtol=1e-5, atol=1e-7)
    assert not got.probabilities()[broken].any()
    positions = np.concatenate([p for p, _ in got.maps("saliency")])
    np.testing.assert_array_equal(positions, kept)
    decoded = analyze(model, streamed, tmp_path / "workers", layers=["conv1"], k=3, methods=["saliency"],
                      batch_size=8, workers=2)  # batches decoded in 2 worker processes: the same analysis
    for key in ("n", "n_skipped", "skipped", "predictions", "confusion_matrix", "layers"):
        assert decoded.summary[key] == s[key], key
    np.testing.assert_array_equal(decoded.probabilities(), got.probabilities())
