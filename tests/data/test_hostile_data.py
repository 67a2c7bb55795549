"""Hostile data sets (issue 11, low classes): unreadable links, folders that are not image-class folders (``/``, deep or
huge trees), files that are not regular files, duplicate class names and warnings that list every class.

Each is a one-line ``DataError`` (or a recorded skip) in bounded time; walks and huge warnings run in a child
process under a 1 GiB address-space limit that reports its own peak (VmHWM, not ru_maxrss, which fork and exec
carry over from the pytest process).
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import textwrap
import time
import unicodedata
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nnsee.data import load_data, load_folder
from nnsee.data.folder import decode_image
from nnsee.data.imageset import ImageSet, first_few
from nnsee.data.splits import split
from nnsee.errors import DataError

REPO = Path(__file__).resolve().parents[2]
LIMIT = 1 << 30


def png(path: Path, value: int = 128) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("L", (6, 6), value).save(path)
    return path


def two_classes(root: Path, n: int = 3) -> Path:
    for c, value in (("a", 20), ("b", 220)):
        for i in range(n):
            png(root / c / f"{i}.png", value)
    return root


def child(code: str, *args: str, timeout: float = 120) -> dict:
    """Run ``code`` in a fresh Python under a 1 GiB address-space limit; its last stdout line is JSON (``peak_mb()``
    gives the child's own peak memory in MB)."""
    script = textwrap.dedent(f"""
        import json, resource, sys
        resource.setrlimit(resource.RLIMIT_AS, ({LIMIT}, {LIMIT}))
        sys.path.insert(0, {str(REPO)!r})
        def peak_mb():
            line = next(l for l in open("/proc/self/status") if l.startswith("VmHWM"))
            return int(line.split()[1]) / 1024
    """) + textwrap.dedent(code)
    done = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- tracebacks where a one-line error belongs -----------------------------------------------------------------------

def _load_each(root: Path, specs: list[str]) -> dict:
    out: dict = {}
    for spec in specs:
        try:
            data = load_folder(root / spec) if spec == "ds" else load_data(str(root / spec)).train
            out[spec] = {"classes": data.class_names, "n": len(data), "skipped": data.skipped}
        except DataError as exc:
            out[spec] = {"error": str(exc)}
    return out


def as_another_user(fn, *args: object) -> dict:  # noqa: ANN001 - any function returning JSON-safe data
    """``fn(*args)`` in a forked child that runs as ``nobody`` when the tests run as root (root reads chmod-000
    folders; the interpreter's own files may be out of nobody's reach, so fork instead of starting a new one)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            os.close(read_end)
            if os.geteuid() == 0:
                os.setgroups([])
                os.setgid(65534)
                os.setuid(65534)
            text = json.dumps(fn(*args))
        except BaseException as exc:  # noqa: BLE001 - reported to the parent
            text = json.dumps({"crash": f"{type(exc).__name__}: {exc}"})
        with os.fdopen(write_end, "w") as f:
            f.write(text)
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as f:
        text = f.read()
    os.waitpid(pid, 0)
    return json.loads(text)


@pytest.fixture
def shared_tmp() -> Path:
    """A folder another user can reach (pytest's own tmp_path is private to root)."""
    folder = Path(tempfile.mkdtemp(prefix="nnsee-perm-"))
    folder.chmod(0o755)
    yield folder
    for dirpath, dirnames, _ in os.walk(folder):
        for d in dirnames:
            if not os.path.islink(os.path.join(dirpath, d)):
                os.chmod(os.path.join(dirpath, d), 0o755)
    shutil.rmtree(folder)


def test_links_through_unreadable_folders_are_one_line(shared_tmp: Path) -> None:
    """Links through a chmod-000 folder, inside the data folder and as the SPEC itself: recorded skips saying
    'permission denied' in a data folder, one-line DataErrors as a SPEC (a traceback before). Run as another user
    where the tests run as root (root reads chmod-000 folders)."""
    ds = two_classes(shared_tmp / "ds")
    locked = shared_tmp / "ds" / "zz_locked"
    png(locked / "x.png")
    (locked / "inner").mkdir()
    np.savez(locked / "set.npz", x=np.zeros((4, 3, 3)), y=np.array([0, 1, 0, 1]))
    os.symlink("../zz_locked/x.png", ds / "a" / "through.png")  # an image that is a link into the locked folder
    os.symlink("zz_locked/inner", ds / "c_class")  # a class folder that is one
    os.symlink("x.png", locked / "link.png")  # a link inside the locked folder
    os.symlink("ds/zz_locked/inner", shared_tmp / "spec_link")  # a SPEC that is a link through it
    for d in (shared_tmp, ds, ds / "a", ds / "b", locked / "inner"):
        d.chmod(0o755)
    for f in [*ds.glob("[ab]/*.png"), locked / "x.png", locked / "set.npz"]:
        f.chmod(0o644)
    locked.chmod(0)
    specs = ["ds", "ds/zz_locked/inner", "ds/zz_locked/set.npz", "ds/zz_locked/link.png", "ds/zz_locked", "spec_link",
             "ds/c_class"]
    load_folder(two_classes(shared_tmp / "warm-up"))  # Pillow's plugins loaded before the fork
    out = as_another_user(_load_each, shared_tmp, specs)
    assert "crash" not in out, out["crash"]
    folder = out.pop("ds")
    assert folder["classes"] == ["a", "b"] and folder["n"] == 6
    skipped: dict[str, str] = {}
    for path, reason in folder["skipped"]:
        skipped[Path(path).name] = skipped.get(Path(path).name, "") + reason + "; "
    assert "permission denied" in skipped["through.png"] and "link" in skipped["through.png"]
    assert "permission denied" in skipped["c_class"]
    assert "cannot list folder: Permission denied" in skipped["zz_locked"]
    for spec, result in out.items():
        assert "error" in result, (spec, result)
        message = result["error"]
        assert "\n" not in message and "permission denied" in message, (spec, message)
        assert "readable" in message


DEVICES = """
    import os, time
    from nnsee.data import load_data
    from nnsee.data.folder import decode_image
    from nnsee.errors import DataError
    out = {}
    for path in sys.argv[1:]:
        started = time.perf_counter()
        try:
            (load_data if path.endswith((".npz", "zero")) else decode_image)(path)
            out[path] = "LOADED"
        except DataError as exc:
            out[path] = str(exc)
        out[path + " seconds"] = time.perf_counter() - started
    print(json.dumps({**out, "peak_mb": peak_mb()}))
"""


def test_data_set_files_must_be_regular_files(tmp_path: Path) -> None:
    """FIFOs, devices and links to /dev/zero, in a data folder and as a SPEC: skipped or refused in milliseconds
    (each one hung or read without end if opened plainly; a child under a timeout and a memory limit)."""
    root = two_classes(tmp_path / "ds")
    os.mkfifo(root / "a" / "pipe.png")
    os.symlink("/dev/zero", root / "a" / "zero.png")  # leaves the folder: never followed
    if os.geteuid() == 0:
        os.mknod(root / "b" / "zero-device.png", stat.S_IFCHR | 0o666, os.makedev(1, 5))
    data = load_folder(root)
    assert len(data) == 6
    skipped = {Path(p).name: r for p, r in data.skipped}
    assert "FIFO" in skipped["pipe.png"] and "not a regular file" in skipped["pipe.png"]
    assert "outside the data folder" in skipped["zero.png"]
    if os.geteuid() == 0:
        assert "device" in skipped["zero-device.png"]
    os.mkfifo(tmp_path / "pipe.npz")
    os.symlink("/dev/zero", tmp_path / "zero.npz")
    paths = [root / "a" / "pipe.png", tmp_path / "pipe.npz", tmp_path / "zero.npz", Path("/dev/zero")]
    out = child(DEVICES, *map(str, paths), timeout=60)
    for path in map(str, paths):
        assert out[path] != "LOADED" and "\n" not in out[path], out[path]
        assert "not a regular file" in out[path], out[path]
        assert out[path + " seconds"] < 1
    assert out["peak_mb"] < 300


def test_a_fifo_put_in_place_of_an_image_after_the_walk_is_not_waited_on(tmp_path: Path) -> None:
    """The decoder checks the file it opened (fstat), not the walk's earlier look: a FIFO swapped in is refused."""
    fifo = tmp_path / "late.png"
    os.mkfifo(fifo)
    started = time.perf_counter()
    with pytest.raises(DataError, match=r"late\.png: a FIFO \(named pipe\), not a regular file"):
        decode_image(fifo)
    assert time.perf_counter() - started < 1


WALK = """
    import time
    from nnsee.data import load_data
    from nnsee.data.folder import load_folder
    from nnsee.errors import DataError
    path, cap = sys.argv[1], int(sys.argv[2])
    started = time.perf_counter()
    try:
        (load_data(path) if cap == 0 else load_folder(path, max_entries=cap))
        outcome = "LOADED"
    except DataError as exc:
        outcome = str(exc)
    print(json.dumps({"outcome": outcome, "seconds": time.perf_counter() - started, "peak_mb": peak_mb()}))
"""


def _wide_tree(root: Path, folders: int, files: int) -> Path:
    for c in range(folders):
        folder = root / f"c{c:03d}"
        folder.mkdir(parents=True)
        for i in range(files):
            os.close(os.open(folder / f"{i}.png", os.O_CREAT | os.O_WRONLY, 0o644))
    return root


@pytest.fixture
def fast_tmp(tmp_path: Path) -> Path:
    """A folder in memory (tmpfs) where there is one: 50,000 files are made there in about a second, not 20."""
    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK)):
        yield tmp_path
        return
    folder = Path(tempfile.mkdtemp(dir=shm, prefix="nnsee-test-"))
    yield folder
    shutil.rmtree(folder)


def test_a_huge_tree_is_refused_as_it_is_walked(fast_tmp: Path) -> None:
    """50,000 empty files: refused once the entry cap (here 20,000) is passed, without walking the rest or keeping
    it; under the default cap the same tree is walked whole and fails with one short line."""
    root = _wide_tree(fast_tmp / "wide", 50, 1000)
    capped = child(WALK, str(root), "20000")
    assert capped["outcome"].startswith(f"{root}: not an image-class folder: it holds more than 20,000 files")
    assert "ROOT/cat/1.png" in capped["outcome"] and "\n" not in capped["outcome"]
    assert capped["seconds"] < 5 and capped["peak_mb"] < 250, capped
    whole = child(WALK, str(root), "0")
    assert "found 0 usable classes" in whole["outcome"] and "and 45 more" in whole["outcome"]
    assert len(whole["outcome"]) < 1000 and whole["seconds"] < 30 and whole["peak_mb"] < 400, whole


def test_deep_nesting_is_refused_at_the_depth_cap(tmp_path: Path) -> None:
    root = two_classes(tmp_path / "ds")
    deep = root / "a"
    for i in range(40):
        deep = deep / f"level{i}"
    png(deep / "x.png")
    started = time.perf_counter()
    with pytest.raises(DataError, match=r"not an image-class folder: .*level5 lies 7 folder levels deep; a data "
                                        r"folder holds one subfolder per class"):
        load_folder(root)
    assert time.perf_counter() - started < 1
    png(root / "a" / "1" / "2" / "3" / "4" / "5" / "ok.png")  # six levels: still a data folder
    shutil.rmtree(root / "a" / "level0")
    assert load_folder(root).class_counts().tolist() == [4, 3]


def test_the_root_of_the_file_system_is_refused_in_seconds() -> None:
    """``--data /`` walked the whole file system before failing; now the first deep folder ends it."""
    out = child(WALK, "/", "0", timeout=60)
    assert out["outcome"].startswith("/: not an image-class folder"), out
    assert out["seconds"] < 20 and out["peak_mb"] < 500, out


# --- accepted silently: duplicate class names ------------------------------------------------------------------------

def _images(k: int) -> tuple[np.ndarray, np.ndarray]:
    return np.zeros((k, 1, 2, 2), np.float32), np.arange(k)


@pytest.mark.parametrize(("names", "why"), [
    (["cat", "dog", "cat"], r"classes 0 and 2 have the same name 'cat'"),
    (["caf\u00e9", unicodedata.normalize("NFD", "caf\u00e9")], r"classes 0 and 1 have names that look the same"),
    (["dog", "d\u202eog"], r"names that look the same"),  # a right-to-left override, invisible on the page
    (["ab", "a\u200bb"], r"names that look the same"),  # a zero-width space
])
def test_duplicate_class_names_are_refused_when_the_set_is_built(names: list[str], why: str) -> None:
    x, y = _images(len(names))
    with pytest.raises(DataError, match=why) as caught:
        ImageSet(x, y, names, "set.npz")
    assert str(caught.value).startswith("set.npz: ") and "\n" not in str(caught.value)
    ImageSet(x, y, [f"{n}{i}" for i, n in enumerate(names)])  # distinct names are fine


def test_duplicate_class_names_from_an_npz_and_from_folders(tmp_path: Path) -> None:
    np.savez(tmp_path / "dup.npz", x=np.zeros((6, 3, 3)), y=np.array([0, 1, 2] * 2),
             class_names=np.array(["a", "b", "a"]))
    with pytest.raises(DataError, match=r"dup\.npz: .*'a'"):  # the npz reader or ImageSet: either refuses
        load_data(str(tmp_path / "dup.npz"))
    root = tmp_path / "ds"
    png(root / "caf\u00e9" / "1.png")
    png(root / unicodedata.normalize("NFD", "caf\u00e9") / "1.png")  # two folders on Linux, one name on a page
    with pytest.raises(DataError, match="names that look the same"):
        load_folder(root)
    shutil.rmtree(root)
    png(root / "\\xff" / "1.png")  # the folder literally named \xff ...
    png(Path(os.fsdecode(os.path.join(os.fsencode(root), b"\xff"))) / "1.png")  # ... and the byte 0xff
    with pytest.raises(DataError, match=r"the same name '\\\\xff'"), warnings.catch_warnings():
        warnings.simplefilter("error")  # refused, not first warned about as names equal but for case
        load_folder(root)


def test_names_equal_but_for_case_stay_distinct_with_a_warning(tmp_path: Path) -> None:
    png(tmp_path / "Cat" / "1.png")
    png(tmp_path / "cat" / "1.png")
    with pytest.warns(UserWarning, match="differ only in case"):
        assert load_folder(tmp_path).class_names == ["Cat", "cat"]


# --- unbounded growth: every list in a warning or an error is bounded ------------------------------------------------

def test_first_few() -> None:
    assert first_few(["a", "b"]) == "'a', 'b'"
    assert first_few(range(100_000)) == "0, 1, 2, 3, 4 and 99,995 more"
    assert first_few(["x" * 500]) == "'" + "x" * 78 + "…"
    assert first_few(["a (1)"], quote=False) == "a (1)"


SPLIT = """
    import warnings
    import numpy as np
    from nnsee.data.imageset import ImageSet
    from nnsee.data.splits import split
    k = int(sys.argv[1])
    data = ImageSet(np.zeros((k, 1, 2, 2), np.float32), np.arange(k), [f"class {i:06d}" for i in range(k)], "many")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        train, val, test = split(data)
    print(json.dumps({"warnings": [str(w.message) for w in caught], "train": len(train), "peak_mb": peak_mb()}))
"""


def test_the_too_few_images_warning_stays_one_short_line_for_100k_classes() -> None:
    """100,000 classes of one image each: the warning was 1.5 MB listing them all; now the first five and a count."""
    out = child(SPLIT, "100000")
    assert out["train"] == 100_000 and len(out["warnings"]) == 1
    message = out["warnings"][0]
    assert len(message) < 400 and "\n" not in message, message[:500]
    assert "(100,000 classes): 'class 000000' (1), " in message and "and 99,995 more" in message


def test_folder_messages_list_a_few_classes(tmp_path: Path) -> None:
    for i in range(300):
        (tmp_path / f"empty{i:03d}").mkdir()
        png(tmp_path / f"Pair{i:03d}" / "1.png")
        png(tmp_path / f"pair{i:03d}" / "1.png")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load_folder(tmp_path)
    (message,) = [str(w.message) for w in caught]
    assert "(300 groups): ['Pair000', 'pair000']" in message and "and 295 more" in message and len(message) < 600
    for i in range(300):
        shutil.rmtree(tmp_path / f"pair{i:03d}")
        (tmp_path / f"Pair{i:03d}" / "1.png").unlink()
    with pytest.raises(DataError, match=r"empty class folders: 'Pair000', .* and 595 more;") as caught_error:
        load_folder(tmp_path)
    assert len(str(caught_error.value)) < 800


def test_splits_of_many_classes_are_the_per_class_rule(tmp_path: Path) -> None:
    """The one-sort grouping gives each class its indices in ascending order, as one scan per class did."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 7, 300)
    data = ImageSet(rng.random((300, 1, 2, 2)).astype(np.float32), y, [str(i) for i in range(7)])
    train, val, test = split(data, 0.2, 0.2, seed=5)
    reference = np.random.default_rng(5)
    for c in range(7):  # the rule, computed here: permute class c's indices; validation first, then test
        idx = reference.permutation(np.flatnonzero(y == c))
        n_val, n_test = max(1, round(len(idx) * 0.2)), max(1, round(len(idx) * 0.2))
        for part, chosen in ((val, idx[:n_val]), (test, idx[n_val:n_val + n_test]), (train, idx[n_val + n_test:])):
            assert sorted(map(tuple, part.images[part.labels == c].reshape(-1, 4))) == sorted(
                map(tuple, data.images[chosen].reshape(-1, 4)))
