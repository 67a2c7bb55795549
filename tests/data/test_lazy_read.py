"""Reading streamed sets: files that fail at read time are skipped, counted and named while the pass goes on; batches
from worker processes equal those read in this process, in order; the dataset views' stream() slices a streamed set
batch by batch without decoding it whole."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from photos import photo_folder

from nnsee.data import load_data
from nnsee.data.folder import decode_image
from nnsee.data.lazy import LazyImages
from nnsee.data.loader import batches
from nnsee.errors import DataError


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NNSEE_CACHE", str(tmp_path / "stream-cache"))


def _broken_folder(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A folder of 3 x 6 JPEGs, one truncated before the scan (its header still reads)."""
    root = photo_folder(tmp_path / "p", 6, 40, fmt="jpg")
    truncated = root / "coffee" / "2.jpg"
    whole = truncated.read_bytes()
    truncated.write_bytes(whole[: len(whole) * 2 // 3])
    return root, truncated, root / "chelsea" / "4.jpg"


@pytest.mark.parametrize("workers", [0, 2])
def test_unreadable_files_mid_way_are_skipped_named_and_the_pass_goes_on(tmp_path: Path, workers: int) -> None:
    root, truncated, replaced = _broken_folder(tmp_path)
    data = load_data(str(root), size=16, grayscale=False, stream=True, val_fraction=0, test_fraction=0).train
    assert len(data) == 18 and data.streamed  # the truncated file passed the header checks of the scan
    replaced.write_bytes(b"\xff\xd8 garbage written after the scan" * 10)
    order = np.arange(len(data))[::-1]
    got = list(batches(data, 4, positions=order, workers=workers))
    assert [len(b.index) + len(b.skipped) for b in got] == [4, 4, 4, 4, 2]
    skipped = [s for b in got for s in b.skipped]
    assert sorted(Path(path).name for _, path, _ in skipped) == ["2.jpg", "4.jpg"]
    assert {path for _, path, _ in skipped} == {str(truncated), str(replaced)}
    assert all("cannot decode" in reason or "not an image" in reason for _, _, reason in skipped)
    kept = np.concatenate([b.index.numpy() for b in got])
    bad = {position for position, _, _ in skipped}
    assert kept.tolist() == [p for p in order.tolist() if p not in bad]  # order kept, nothing else lost
    images = np.concatenate([b.images.numpy() for b in got])
    files = [data.images.source.real[i] for i in data.images.index]  # the split's files, in split order
    for image, position in zip(images, kept, strict=True):  # independent reference: each file decoded alone
        np.testing.assert_array_equal(image, decode_image(files[position], 16, grayscale=False))
    with pytest.raises(DataError, match=r"\.jpg\) cannot be read now: cannot decode") as info:
        np.asarray(data.images)
    assert "\n" not in str(info.value)


def test_in_memory_skips_the_truncated_file_at_load(tmp_path: Path) -> None:
    root, truncated, _ = _broken_folder(tmp_path)
    data = load_data(str(root), size=16, stream=False, val_fraction=0, test_fraction=0).train
    assert len(data) == 17 and str(truncated) in {path for path, _ in data.skipped}


def test_streamed_batches_with_workers_equal_those_without(tmp_path: Path, h) -> None:
    h.tiny_idx_set(tmp_path / "idx", n_train=60, n_test=10, gz=True)
    splits = load_data(str(tmp_path / "idx"), stream=True, size=7, grayscale=False)
    data = splits.train
    positions = np.random.default_rng(0).permutation(len(data))
    one = list(batches(data, 8, positions=positions, transform=lambda x: x * 3 - 1))
    two = list(batches(data, 8, positions=positions, transform=lambda x: x * 3 - 1, workers=2))
    reference = np.asarray(load_data(str(tmp_path / "idx"), stream=False, size=7, grayscale=False).train.images)
    assert len(one) == len(two) == -(-len(data) // 8)
    for a, b in zip(one, two, strict=True):
        assert a.index.tolist() == b.index.tolist() and not a.skipped and not b.skipped
        np.testing.assert_array_equal(a.images.numpy(), b.images.numpy())
        np.testing.assert_array_equal(a.images.numpy(), reference[a.index.numpy()] * 3 - 1)
        np.testing.assert_array_equal(a.labels.numpy(), data.labels[a.index.numpy()])


def test_dataset_views_stream_slices_a_streamed_set(tmp_path: Path, h, monkeypatch: pytest.MonkeyPatch) -> None:
    from nnsee.methods.dataset_views._stream import stream

    h.tiny_idx_set(tmp_path / "idx", n_train=30, n_test=10, gz=False)
    data = load_data(str(tmp_path / "idx"), stream=True).train
    reference = np.asarray(data.images)

    def whole(*args: object, **kwargs: object) -> None:
        raise AssertionError("the whole set was decoded")

    monkeypatch.setattr(LazyImages, "__array__", whole)
    got = list(stream(data.images, 4))
    assert [len(b) for b in got] == [4] * (len(data) // 4) + ([len(data) % 4] if len(data) % 4 else [])
    np.testing.assert_array_equal(np.concatenate(got), reference)
