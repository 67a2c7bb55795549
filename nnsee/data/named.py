"""The named IDX data sets (``fashion-mnist``, ``mnist``) and folders of IDX files.

A named set is looked for, in order, in ``data_dir``, ``$NNSEE_DATA``, Debian's ``/usr/share/datasets/<name>/``
and the download cache; each place may hold the four files directly or in a ``<name>/`` subfolder. If none has
them, they are downloaded with pooch from ``mirror`` / ``$NNSEE_MIRROR`` / the public mirrors into the cache
(``$NNSEE_DATA/<name>`` or pooch's ``os_cache("nnsee")/<name>``). Every file of a named set, found or
downloaded, must match the sha256 of its *decompressed* content, so a re-compressed copy (Debian's) passes
and a corrupt or substituted one does not.
"""

from __future__ import annotations

import functools
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from nnsee.data.idx import load_idx_pair
from nnsee.data.imageset import ImageSet
from nnsee.errors import DataError, not_one_of
from nnsee.io import open_regular

#: The four standard IDX file names, without ``.gz``.
TRAIN_IMAGES, TRAIN_LABELS = "train-images-idx3-ubyte", "train-labels-idx1-ubyte"
TEST_IMAGES, TEST_LABELS = "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"
IDX_FILES = (TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS)


@dataclass(frozen=True)
class NamedSet:
    """A named IDX data set: class names, sha256 of each decompressed file, download mirrors, install hint."""

    name: str
    class_names: tuple[str, ...]
    sha256: dict[str, str]
    mirrors: tuple[str, ...]
    install_hint: str = ""


NAMED_SETS: dict[str, NamedSet] = {
    "fashion-mnist": NamedSet(
        "fashion-mnist",
        ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
        {  # computed from Debian's dataset-fashion-mnist files, decompressed
            TRAIN_IMAGES: "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
            TRAIN_LABELS: "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
            TEST_IMAGES: "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
            TEST_LABELS: "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        },
        (
            "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
            "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
        ),
        "or on Debian/Ubuntu: apt-get install dataset-fashion-mnist",
    ),
    "mnist": NamedSet(
        "mnist",
        tuple(str(d) for d in range(10)),
        {  # the widely published sha256 of the decompressed files (47,040,016 / 60,008 / 7,840,016 / 10,008 bytes)
            TRAIN_IMAGES: "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
            TRAIN_LABELS: "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
            TEST_IMAGES: "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
            TEST_LABELS: "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        },
        ("https://ossci-datasets.s3.amazonaws.com/mnist/", "https://storage.googleapis.com/cvdf-datasets/mnist/"),
    ),
}

DEBIAN_DATASETS = Path("/usr/share/datasets")
log = logging.getLogger(__name__)


def find_idx_file(folder: Path, base: str) -> Path | None:
    """``folder/base`` or ``folder/base.gz`` (also the ``train-images.idx3-ubyte`` spelling), if it is a file."""
    for name in (base, base.replace("-idx", ".idx")):
        for candidate in (folder / name, folder / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    return None


def has_idx_files(folder: Path) -> bool:
    """Whether ``folder`` holds at least the training pair of standard IDX files."""
    return find_idx_file(folder, TRAIN_IMAGES) is not None and find_idx_file(folder, TRAIN_LABELS) is not None


#: A class-names file holds at most MAX_CLASSES lines: 4 MiB is 2,000 names of 2,000 bytes each.
MAX_CLASS_NAMES_BYTES = 4 << 20


def _class_names_file(folder: Path) -> list[str] | None:
    """The lines of ``class_names.txt`` or ``classes.txt`` in ``folder`` (a regular file of at most 4 MiB), if any."""
    for name in ("class_names.txt", "classes.txt"):
        path = folder / name
        if path.is_file():
            try:
                with open_regular(path, "the class names", max_bytes=MAX_CLASS_NAMES_BYTES, error=DataError) as f:
                    text = f.read(MAX_CLASS_NAMES_BYTES + 1).decode("utf-8")
            except UnicodeDecodeError as e:
                raise DataError(f"{path}: not UTF-8 text ({e}); write one class name per line in UTF-8") from e
            names = [line.rstrip("\r\n") for line in text.splitlines()]
            return [n for n in names if n.strip()]
    return None


def _pair_loader(stream: bool, max_memory: int | None):  # noqa: ANN202 - load_idx_pair or its streamed twin
    if not stream:
        return load_idx_pair
    from nnsee.data.lazy_idx import lazy_idx_pair

    return functools.partial(lazy_idx_pair, max_memory=max_memory)


def load_idx_folder(path: str | Path, class_names: list[str] | None = None, *, stream: bool = False,
                    max_memory: int | None = None) -> tuple[ImageSet, ImageSet | None]:
    """(train, test) from a folder holding the standard IDX file names, raw or ``.gz``.

    The test pair (``t10k-*``) is optional: without it the second item is ``None``. Class names come from
    ``class_names``, else a ``class_names.txt`` / ``classes.txt`` (one per line) in the folder, else ``"0".."K-1"``.
    ``stream``: the images are read batch by batch when used (:mod:`nnsee.data.lazy_idx`), never here.
    """
    read_pair = _pair_loader(stream, max_memory)
    folder = Path(path)
    if not folder.is_dir():
        raise DataError(f"{folder}: not a folder")
    found = {base: find_idx_file(folder, base) for base in IDX_FILES}
    if found[TRAIN_IMAGES] is None or found[TRAIN_LABELS] is None:
        raise DataError(
            f"{folder}: expected IDX files {TRAIN_IMAGES}[.gz] and {TRAIN_LABELS}[.gz] "
            f"(and optionally {TEST_IMAGES}, {TEST_LABELS})"
        )
    if (found[TEST_IMAGES] is None) != (found[TEST_LABELS] is None):
        missing = TEST_IMAGES if found[TEST_IMAGES] is None else TEST_LABELS
        raise DataError(f"{folder}: the test pair is incomplete: {missing}[.gz] is missing")
    names = class_names or _class_names_file(folder)
    source = str(folder)
    train = read_pair(found[TRAIN_IMAGES], found[TRAIN_LABELS], names, source)
    test = None
    if found[TEST_IMAGES] is not None:
        test = read_pair(found[TEST_IMAGES], found[TEST_LABELS], names, source)
        if names is None and test.n_classes != train.n_classes:  # numbered classes: use the larger range for both
            k = max(test.n_classes, train.n_classes)
            numbered = [str(i) for i in range(k)]
            train = ImageSet(train.images, train.labels, numbered, source)
            test = ImageSet(test.images, test.labels, numbered, source)
        if test.shape != train.shape:
            raise DataError(f"{folder}: test images are {test.shape[1:]}, train images {train.shape[1:]}")
    return train, test


def _candidate_folders(name: str, data_dir: str | Path | None) -> list[tuple[str, Path]]:
    """(label, folder) pairs to look in, in order, without repeats."""
    places: list[tuple[str, Path]] = []
    for label, env in (("--data-dir", data_dir), ("NNSEE_DATA", os.environ.get("NNSEE_DATA") or None)):
        if env is not None:
            root = Path(env).expanduser()
            places += [(label, root), (label, root / name)]
    places += [("Debian datasets", DEBIAN_DATASETS / name), ("download cache", _cache_dir(name))]
    seen: set[Path] = set()
    return [(label, p) for label, p in places if not (p in seen or seen.add(p))]


def _cache_dir(name: str) -> Path:
    root = os.environ.get("NNSEE_DATA")
    if root:
        return Path(root).expanduser() / name
    import pooch

    return Path(pooch.os_cache("nnsee")) / name


def _complete(folder: Path) -> dict[str, Path] | None:
    found = {base: find_idx_file(folder, base) for base in IDX_FILES}
    return found if all(found.values()) else None  # type: ignore[return-value]


def find_named(name: str, data_dir: str | Path | None = None) -> dict[str, Path] | None:
    """The four IDX files of the named set ``name`` where :func:`load_named` would find them, without downloading
    or reading them (None if no place holds all four)."""
    for _, folder in _candidate_folders(name, data_dir):
        if (files := _complete(folder)) is not None:
            return files
    return None


def _download(ds: NamedSet, cache: Path, mirrors: list[str]) -> tuple[dict[str, Path] | None, list[str]]:
    """Download the missing files of ``ds`` into ``cache`` from the first mirror that serves them all."""
    import pooch

    errors: list[str] = []
    pooch_log = pooch.get_logger()
    level = pooch_log.level
    pooch_log.setLevel(logging.WARNING)  # its "use this known_hash" advice is for pooch users, not ours
    try:
        for base_url in mirrors:
            try:
                cache.mkdir(parents=True, exist_ok=True)
                for base in IDX_FILES:
                    if find_idx_file(cache, base) is None:
                        url = f"{base_url.rstrip('/')}/{base}.gz"
                        log.info("downloading %s to %s", url, cache)
                        pooch.retrieve(url, known_hash=None, fname=f"{base}.gz", path=cache, progressbar=False)
                return _complete(cache), errors
            except Exception as e:  # noqa: BLE001 - any network/HTTP/filesystem failure: try the next mirror
                errors.append(f"{base_url}: {type(e).__name__}: {e}")
    finally:
        pooch_log.setLevel(level)
    return None, errors


def _load_verified(ds: NamedSet, files: dict[str, Path], downloaded: bool, stream: bool = False,
                   max_memory: int | None = None) -> tuple[ImageSet, ImageSet]:
    read_pair = _pair_loader(stream, max_memory)

    def pair(images: str, labels: str) -> ImageSet:
        sha = (ds.sha256[images], ds.sha256[labels])
        try:
            return read_pair(files[images], files[labels], list(ds.class_names), ds.name, expected_sha256=sha)
        except DataError as e:
            if not downloaded:
                raise
            for base in (images, labels):
                files[base].unlink(missing_ok=True)
            raise DataError(f"{e} (the downloaded files were deleted: load again to download them again)") from e

    return pair(TRAIN_IMAGES, TRAIN_LABELS), pair(TEST_IMAGES, TEST_LABELS)


def load_named(
    name: str, data_dir: str | Path | None = None, download: bool = True, mirror: str | None = None, *,
    stream: bool = False, max_memory: int | None = None,
) -> tuple[ImageSet, ImageSet]:
    """(official train, official test) of the named set ``name`` (``fashion-mnist`` or ``mnist``).

    Looks in ``data_dir``, ``$NNSEE_DATA``, ``/usr/share/datasets/<name>/`` and the cache, then downloads
    (unless ``download`` is False) from ``mirror`` / ``$NNSEE_MIRROR`` / the public mirrors. ``stream``: the images
    are read batch by batch when used, never here (checked against their sha256 once, into the stream cache).
    """
    key = name.lower().replace("_", "-")
    if key not in NAMED_SETS:
        raise DataError(not_one_of("the named data set", name, NAMED_SETS))
    ds = NAMED_SETS[key]
    looked: list[str] = []
    for label, folder in _candidate_folders(key, data_dir):
        files = _complete(folder)
        if files is not None:
            return _load_verified(ds, files, downloaded=False, stream=stream, max_memory=max_memory)
        looked.append(f"{folder} ({label})")
    errors: list[str] = []
    if download:
        mirrors = [mirror] if mirror else [os.environ["NNSEE_MIRROR"]] if os.environ.get("NNSEE_MIRROR") else []
        cache = _cache_dir(key)
        files, errors = _download(ds, cache, mirrors or list(ds.mirrors))
        if files is not None:
            return _load_verified(ds, files, downloaded=True, stream=stream, max_memory=max_memory)
    names = ", ".join(f"{b}.gz" for b in IDX_FILES)
    tried = "download failed: " + "; ".join(errors) if errors else "download was turned off"
    raise DataError(
        f"{key}: the four IDX files ({names}) were not found. Looked in: {'; '.join(looked)}. {tried}.\n"
        f"To fix: pass --data-dir DIR (a folder holding the four files, or a {key}/ subfolder), set NNSEE_DATA=DIR"
        f"{', ' + ds.install_hint if ds.install_hint else ''}, "
        "or let nnsee download them (NNSEE_MIRROR=URL picks another mirror)."
    )
