"""The resize rules of image files (``nnsee.data.image_decode.RESIZE_RULES``): ``torchvision`` against the rule
computed by hand with PIL primitives, as torchvision's ``Resize(round(size * 256 / 224))`` + ``CenterCrop(size)``
do it on a PIL image (shorter side to s, longer side ``int(s * long / short)``, ``Image.resize`` bilinear, crop box at
``int(round((w - size) / 2.0))``), on scikit-image's chelsea photo (451x300, wide) and the same photo turned tall;
``square`` unchanged (``ImageOps.fit``, Lanczos); unknown names refused in one line; a sliver of a photo resampled in
bounded memory."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from nnsee.data import load_data, load_folder
from nnsee.data.folder import decode_image
from nnsee.errors import DataError
from nnsee.serve.decode import decode_bytes

skimage_data = pytest.importorskip("skimage.data")


def torchvision_by_hand(im: Image.Image, size: int) -> np.ndarray:
    """torchvision's Resize(round(size*256/224)) then CenterCrop(size), written from its documented definitions."""
    s = round(size * 256 / 224)
    w, h = im.size
    if w <= h:
        new_w, new_h = s, int(s * h / w)
    else:
        new_w, new_h = int(s * w / h), s
    big = im.resize((new_w, new_h), Image.BILINEAR)
    top, left = int(round((new_h - size) / 2.0)), int(round((new_w - size) / 2.0))
    crop = big.crop((left, top, left + size, top + size))
    return np.asarray(crop, np.float32).transpose(2, 0, 1) / 255


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("photos")
    wide = skimage_data.chelsea()  # 300 rows x 451 columns
    assert wide.shape == (300, 451, 3)
    files = {"wide": folder / "chelsea.png", "tall": folder / "chelsea-tall.png"}
    Image.fromarray(wide).save(files["wide"])
    Image.fromarray(np.ascontiguousarray(wide.transpose(1, 0, 2))).save(files["tall"])
    return files


def test_the_torchvision_geometry_by_hand(monkeypatch: pytest.MonkeyPatch) -> None:
    """The numbers of the rule worked out on paper for chelsea (451x300): at 224, s = 256, the width
    int(256 * 451 / 300) = 384, the crop at (80, 16); at 64, s = round(73.14) = 73, the width int(109.74) = 109 and
    the crop at (round(22.5), round(4.5)) = (22, 4) (Python rounds halves to even, as torchvision's crop does)."""
    from nnsee.data import image_decode

    calls: list[tuple] = []
    real_resize, real_crop = Image.Image.resize, Image.Image.crop
    monkeypatch.setattr(Image.Image, "resize", lambda self, size, *a, **k: calls.append(("resize", tuple(size)))
                        or real_resize(self, size, *a, **k))
    monkeypatch.setattr(Image.Image, "crop", lambda self, box=None: calls.append(("crop", tuple(box)))
                        or real_crop(self, box))
    im = Image.new("RGB", (451, 300))
    image_decode.resized(im, 224, "torchvision")
    image_decode.resized(im, 64, "torchvision")
    assert calls == [("resize", (384, 256)), ("crop", (80, 16, 304, 240)),
                     ("resize", (109, 73)), ("crop", (22, 4, 86, 68))]


@pytest.mark.parametrize("which", ["wide", "tall"])
@pytest.mark.parametrize("size", [224, 64])
def test_torchvision_rule_equals_the_hand_computed_reference(photos: dict[str, Path], which: str, size: int) -> None:
    path = photos[which]
    want = torchvision_by_hand(Image.open(path).convert("RGB"), size)
    got = decode_image(path, size=size, grayscale=False, resize="torchvision")
    assert got.shape == (3, size, size) and got.dtype == np.float32
    assert np.abs(got - want).max() <= 1 / 255 + 1e-7
    uploaded = decode_bytes(path.read_bytes(), size, False, "torchvision")  # the live page's path
    assert np.array_equal(uploaded, got)
    square = decode_image(path, size=size, grayscale=False)  # the rules really differ on this photo
    assert np.abs(square - want).max() > 0.2


def test_square_rule_is_unchanged(photos: dict[str, Path]) -> None:
    """The default is nnsee's square crop, as before the rules existed: ImageOps.fit with Lanczos."""
    im = Image.open(photos["wide"]).convert("RGB")
    want = np.asarray(ImageOps.fit(im, (64, 64), Image.LANCZOS), np.float32).transpose(2, 0, 1) / 255
    assert np.array_equal(decode_image(photos["wide"], size=64, grayscale=False), want)
    assert np.array_equal(decode_image(photos["wide"], size=64, grayscale=False, resize="square"), want)


def test_folder_loader_applies_the_rule_and_the_spec_records_it(photos: dict[str, Path], tmp_path: Path) -> None:
    for k, name in enumerate(("cat", "tall-cat")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "a.png").write_bytes(photos[("wide", "tall")[k]].read_bytes())
    data = load_folder(tmp_path, size=64, grayscale=False, resize="torchvision")
    for k, which in enumerate(("wide", "tall")):
        want = torchvision_by_hand(Image.open(photos[which]).convert("RGB"), 64)
        assert np.abs(data.images[k] - want).max() <= 1 / 255 + 1e-7
    splits = load_data(str(tmp_path), size=64, grayscale=False, resize="torchvision", val_fraction=0,
                       test_fraction=0)
    assert splits.spec["resize"] == "torchvision"
    assert "resize" not in load_data(str(tmp_path), size=64, grayscale=False, val_fraction=0,
                                     test_fraction=0).spec  # the default is not written


@pytest.mark.parametrize("call", [
    lambda p: decode_image(p, size=8, resize="shorter-side"),
    lambda p: load_folder(p.parent, size=8, resize="shorter-side"),
    lambda p: load_data(str(p.parent), size=8, resize="shorter-side"),
])
def test_unknown_rule_is_one_line(photos: dict[str, Path], call) -> None:
    with pytest.raises(DataError) as e:
        call(photos["wide"])
    message = str(e.value)
    assert "\n" not in message and "square, torchvision" in message and "'shorter-side'" in message


CHILD = textwrap.dedent("""
    import resource, sys, time
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
    from nnsee.data.folder import decode_image
    start = time.perf_counter()
    out = decode_image(sys.argv[1], size=64, grayscale=False, resize="torchvision")
    took = time.perf_counter() - start
    hwm = [line for line in open("/proc/self/status") if line.startswith("VmHWM")][0].split()[1]
    print(out.shape, int(hwm) // 1024, f"{took:.2f}")
""")


def test_a_sliver_is_resampled_in_bounded_memory(tmp_path: Path) -> None:
    """A 2,000,000 x 1 px image: resizing it whole would take 73 x 146,000,000 px (32 GB); only the crop is
    resampled, in a child under a 1 GiB address-space limit, and it equals the hand rule on a shorter sliver."""
    path = tmp_path / "sliver.png"
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (1, 2_000_000, 3), dtype=np.uint8)).save(path)
    done = subprocess.run([sys.executable, "-c", CHILD, str(path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    shape, peak_mb, seconds = done.stdout.split(")")[0] + ")", *done.stdout.split(")")[1].split()
    print(f"sliver: peak {peak_mb} MB, {seconds} s")
    assert shape == "(3, 64, 64)" and int(peak_mb) < 400
    short = tmp_path / "short.png"  # 40:1, past the whole-image bound too: the box path against the hand rule
    Image.fromarray(rng.integers(0, 255, (30, 1200, 3), dtype=np.uint8)).save(short)
    want = torchvision_by_hand(Image.open(short).convert("RGB"), 64)
    assert np.abs(decode_image(short, size=64, grayscale=False, resize="torchvision") - want).max() <= 1 / 255 + 1e-7
