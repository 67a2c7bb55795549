"""Image folders: degenerate layouts, bad files, awkward images, hostile names and links."""

from __future__ import annotations

import json
import os
import struct
import time
import zlib

import numpy as np
import pytest
from PIL import Image

from nnsee.data import folder as folder_mod
from nnsee.data.folder import decode_image, load_folder
from nnsee.errors import DataError


def save(path, im=None, **kw):
    path.parent.mkdir(parents=True, exist_ok=True)
    (im if im is not None else Image.new("L", (8, 8), 128)).save(path, **kw)
    return path


def two_classes(root, n=2):
    for cls, value in (("a", 0), ("b", 255)):
        for i in range(n):
            save(root / cls / f"{i}.png", Image.new("L", (8 + i, 8), value))
    return root


def skipped_reasons(data):
    return {os.path.basename(p): r for p, r in data.skipped}


def test_basic_folder(tmp_path):
    data = load_folder(two_classes(tmp_path), size=6)
    assert data.images.shape == (4, 1, 6, 6) and data.class_names == ["a", "b"]
    assert data.labels.tolist() == [0, 0, 1, 1] and data.skipped == []
    np.testing.assert_allclose(data.images[:2], 0.0)
    np.testing.assert_allclose(data.images[2:], 1.0)
    rgb = load_folder(tmp_path, size=5, grayscale=False)
    assert rgb.images.shape == (4, 3, 5, 5)
    again = load_folder(tmp_path, size=6)
    np.testing.assert_array_equal(again.images, data.images)  # deterministic


def test_empty_root(tmp_path):
    with pytest.raises(DataError, match=r"found 0 usable classes.*at least 2 classes.*ROOT/cat/1\.png") as e:
        load_folder(tmp_path)
    assert str(tmp_path) in str(e.value)


def test_missing_root(tmp_path):
    with pytest.raises(DataError, match="nope: not a folder"):
        load_folder(tmp_path / "nope")


def test_single_class(tmp_path):
    save(tmp_path / "only" / "1.png")
    with pytest.raises(DataError, match=r"found 1 usable class \('only'\)"):
        load_folder(tmp_path)


def test_empty_class_folder_dropped(tmp_path):
    two_classes(tmp_path)
    (tmp_path / "c").mkdir()
    data = load_folder(tmp_path)
    assert data.class_names == ["a", "b"]
    assert (str(tmp_path / "c"), "class folder without usable images, dropped") in data.skipped


def test_all_classes_empty(tmp_path):
    for c in "abc":
        (tmp_path / c).mkdir()
    (tmp_path / "a" / "notes.txt").write_text("hi")
    with pytest.raises(DataError, match=r"found 0 usable classes; empty class folders: 'a', 'b', 'c'; "):
        load_folder(tmp_path)


def test_non_image_and_hidden_files_recorded(tmp_path):
    two_classes(tmp_path)
    (tmp_path / "a" / "notes.txt").write_text("not an image")
    (tmp_path / "a" / ".DS_Store").write_bytes(b"\0\0\0\1Bud1" + bytes(100))
    (tmp_path / "b" / ".hidden.png").write_bytes(b"x")
    (tmp_path / ".git").mkdir()
    (tmp_path / "README.md").write_text("top-level file")
    data = load_folder(tmp_path)
    assert len(data) == 4
    r = skipped_reasons(data)
    assert "not an image file (.txt)" in r["notes.txt"]
    assert "hidden" in r[".DS_Store"] and "hidden" in r[".hidden.png"] and "hidden" in r[".git"]
    assert "not inside a class folder" in r["README.md"]


def test_bad_files_skipped_counted_and_named(tmp_path):
    two_classes(tmp_path)
    (tmp_path / "a" / "zero.png").write_bytes(b"")
    good = (tmp_path / "a" / "0.png").read_bytes()
    big = save(tmp_path / "x.png", Image.effect_noise((64, 64), 50)).read_bytes()
    (tmp_path / "x.png").unlink()
    (tmp_path / "a" / "truncated.png").write_bytes(big[: len(big) // 2])
    (tmp_path / "b" / "garbage.jpg").write_bytes(os.urandom(500))
    (tmp_path / "b" / "header-only.png").write_bytes(good[:40])
    data = load_folder(tmp_path)
    assert len(data) == 4 and len(data.skipped) == 4
    r = skipped_reasons(data)
    assert r["zero.png"] == "empty file (0 bytes)"
    assert "cannot decode" in r["truncated.png"] or "truncated" in r["truncated.png"]
    assert "not an image of a supported format" in r["garbage.jpg"]
    assert "header-only.png" in r
    assert all(p.startswith(str(tmp_path)) for p, _ in data.skipped)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads chmod 000 files; see the monkeypatched variant")
def test_unreadable_file_chmod_000(tmp_path):
    two_classes(tmp_path)
    locked = save(tmp_path / "a" / "locked.png")
    locked.chmod(0)
    try:
        data = load_folder(tmp_path)
    finally:
        locked.chmod(0o644)
    assert "permission denied" in skipped_reasons(data)["locked.png"]


def test_unreadable_file_permission_error(tmp_path, monkeypatch):
    two_classes(tmp_path)
    locked = save(tmp_path / "a" / "locked.png")
    locked.chmod(0)
    real_open = os.open

    def guarded(path, *args, **kw):
        if os.path.basename(str(path)) == "locked.png":
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kw)

    monkeypatch.setattr(folder_mod.os, "open", guarded)
    data = load_folder(tmp_path)
    assert len(data) == 4 and "permission denied" in skipped_reasons(data)["locked.png"]


def png_bomb(path, side=10_000):
    """A ~12 KB PNG declaring side x side 1-bit pixels (100 MP): the pixel data is all zeros, deflated."""

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = zlib.compress(bytes((side // 8 + 1) * side), 9)
    ihdr = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", raw) + chunk(b"IEND", b""))
    return path


def test_png_bomb_rejected_in_milliseconds(tmp_path):
    (tmp_path / "b").mkdir()
    bomb = png_bomb(tmp_path / "b" / "bomb.png")
    assert bomb.stat().st_size < 20_000
    t = time.perf_counter()
    with pytest.raises(DataError, match=r"bomb\.png: .*(decompression bomb|megapixels)"):
        decode_image(bomb)
    assert time.perf_counter() - t < 0.05
    save(tmp_path / "a" / "1.png")
    save(tmp_path / "b" / "1.png")
    t = time.perf_counter()
    data = load_folder(tmp_path)
    assert time.perf_counter() - t < 0.5 and len(data) == 2 and "bomb" in skipped_reasons(data)["bomb.png"]


def test_pixel_limit_checked_before_decoding(tmp_path, monkeypatch):
    monkeypatch.setattr(folder_mod, "MAX_PIXELS", 1000)
    path = save(tmp_path / "p.png", Image.new("L", (40, 40)))
    with pytest.raises(DataError, match=r"p\.png: image declares 40x40 = 0 megapixels"):
        decode_image(path)


def test_16_bit_png(tmp_path):
    arr = np.full((10, 10), 30000, np.uint16)
    arr[:5] = 65535
    path = save(tmp_path / "deep.png", Image.fromarray(arr))
    assert Image.open(path).mode.startswith("I")
    x = decode_image(path, size=10)
    assert x.shape == (1, 10, 10) and x.dtype == np.float32
    np.testing.assert_allclose(x[0, :4], 1.0, atol=1e-6)
    np.testing.assert_allclose(x[0, 6:], 30000 / 65535, atol=1e-4)
    assert decode_image(path, size=10, grayscale=False).shape == (3, 10, 10)


def test_cmyk_jpeg_palette_rgba(tmp_path):
    cmyk = save(tmp_path / "cmyk.jpg", Image.new("CMYK", (16, 16), (0, 0, 0, 0)), quality=95)  # white
    assert Image.open(cmyk).mode == "CMYK"
    np.testing.assert_allclose(decode_image(cmyk, 8), 1.0, atol=0.02)
    np.testing.assert_allclose(decode_image(cmyk, 8, grayscale=False), 1.0, atol=0.02)

    pal = Image.new("P", (8, 8), 1)
    pal.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    red = decode_image(save(tmp_path / "pal.png", pal), 8, grayscale=False)
    np.testing.assert_allclose(red[:, 0, 0], [1.0, 0.0, 0.0])
    pal_t = pal.copy()
    pal_t.info["transparency"] = 1
    np.testing.assert_allclose(decode_image(save(tmp_path / "palt.png", pal_t, transparency=1), 8), 1.0)

    rgba = Image.new("RGBA", (8, 8), (255, 0, 0, 0))  # fully transparent red: white
    rgba.putpixel((0, 0), (0, 0, 0, 255))  # one opaque black pixel
    x = decode_image(save(tmp_path / "rgba.png", rgba), 8)
    assert x[0, 0, 0] == 0.0 and np.allclose(x.ravel()[1:], 1.0)
    la = Image.new("LA", (8, 8), (0, 0))
    np.testing.assert_allclose(decode_image(save(tmp_path / "la.png", la), 8), 1.0)


def test_exif_rotation_applied(tmp_path):
    im = Image.new("L", (40, 20), 255)
    im.paste(0, (0, 0, 20, 20))  # left half black as stored
    exif = im.getexif()
    exif[0x0112] = 6  # display rotated 90 degrees clockwise: the left half becomes the top
    path = save(tmp_path / "rot.png", im, exif=exif)
    x = decode_image(path, 20)[0]
    assert x[:8].mean() < 0.05 and x[12:].mean() > 0.95
    plain = decode_image(save(tmp_path / "plain.png", im), 20)[0]
    assert plain[:, :8].mean() < 0.05 and plain[:, 12:].mean() > 0.95


def test_animated_gif_and_multipage_tiff_use_first_frame(tmp_path):
    frames = [Image.new("L", (8, 8), v) for v in (0, 255, 128)]
    gif = save(tmp_path / "anim.gif", frames[0], save_all=True, append_images=frames[1:], duration=50, loop=0)
    assert Image.open(gif).n_frames == 3
    np.testing.assert_allclose(decode_image(gif, 8), 0.0)
    pages = [Image.new("RGB", (8, 8), c) for c in ((255, 255, 255), (0, 0, 0))]
    tif = save(tmp_path / "pages.tif", pages[0], save_all=True, append_images=pages[1:])
    assert Image.open(tif).n_frames == 2
    np.testing.assert_allclose(decode_image(tif, 8), 1.0)


def test_mixed_sizes_centre_cropped(tmp_path):
    wide = Image.new("L", (60, 20), 0)
    wide.paste(255, (20, 0, 40, 20))  # bright centre square, dark sides: the centre crop is all bright
    save(tmp_path / "a" / "wide.png", wide)
    save(tmp_path / "a" / "small.png", Image.new("L", (3, 5), 255))
    save(tmp_path / "b" / "big.jpg", Image.new("RGB", (500, 300), (10, 10, 10)))
    data = load_folder(tmp_path, size=28)
    assert data.images.shape == (3, 1, 28, 28)
    wide_x = data.images[1, 0]  # wide.png, sorted after small.png: the bright centre, up to Lanczos ringing at edges
    assert wide_x[:, 3:-3].min() > 0.98 and wide_x.mean() > 0.97


def test_symlinks_out_of_root_and_loops(tmp_path):
    root = two_classes(tmp_path / "root")
    outside = save(tmp_path / "secret" / "s.png", Image.new("L", (8, 8), 77))
    os.symlink(outside, root / "a" / "leak.png")
    os.symlink(outside.parent, root / "leakdir")  # a class folder outside the root
    os.symlink(outside.parent, root / "b" / "sub")
    os.symlink(root / "a", root / "a" / "loop")  # a loop through an ancestor
    os.symlink("self", root / "b" / "self")  # a link to itself
    os.symlink(root / "b" / "0.png", root / "a" / "inside.png")  # inside the root: fine
    t = time.perf_counter()
    data = load_folder(root)
    assert time.perf_counter() - t < 2
    assert data.class_names == ["a", "b"] and len(data) == 5
    assert not np.any(np.isclose(data.images, 77 / 255))
    r = skipped_reasons(data)
    for name in ("leak.png", "leakdir", "sub"):
        assert "outside the data folder" in r[name]
    assert "symlink loop" in r["loop"] and "symlink loop" in r["self"]


def test_hostile_class_names(tmp_path):
    names = ['<img src=x onerror="alert(1)">&amp;', "it's \"quoted\"", "línea\nnueva", "猫 🐱", "Cat", "cat"]
    for i, n in enumerate(names):
        save(tmp_path / n / "1.png", Image.new("L", (8, 8), i * 40))
    with pytest.warns(UserWarning, match="differ only in case"):
        data = load_folder(tmp_path)
    assert sorted(names) == data.class_names
    assert json.loads(json.dumps(data.class_names)) == data.class_names
    assert json.loads(json.dumps(data.class_names, ensure_ascii=False)) == data.class_names


def test_undecodable_folder_name_survives_json(tmp_path):
    two_classes(tmp_path)
    raw = os.path.join(os.fsencode(tmp_path), b"bad\xff")
    os.mkdir(raw)
    Image.new("L", (8, 8)).save(os.path.join(raw, b"1.png").decode("utf-8", "surrogateescape"))
    data = load_folder(tmp_path)
    assert "bad\\xff" in data.class_names
    json.dumps(data.class_names, ensure_ascii=False).encode("utf-8")


def test_nested_folders_belong_to_their_class(tmp_path):
    two_classes(tmp_path)
    save(tmp_path / "a" / "deeper" / "x.png")
    assert load_folder(tmp_path).class_counts().tolist() == [3, 2]


@pytest.mark.parametrize("fmt", ["PCX", "EPS", "TGA"])
def test_formats_outside_the_allow_list_refused(tmp_path, fmt):
    """One allow-list (IMAGE_FORMATS) for folders, explain and the page: EPS would start Ghostscript."""
    from nnsee.data.image_decode import IMAGE_FORMATS

    path = tmp_path / f"x.{fmt.lower()}"
    if fmt == "EPS":
        path.write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 16 16\nshowpage\n")
    else:
        Image.new("L", (16, 16), 200).save(path, fmt)
    assert fmt not in IMAGE_FORMATS
    with pytest.raises(DataError, match="not an image of a supported format"):
        decode_image(path, 8)
