"""PNG bytes, data: URIs, atomic saves, animated GIF round trip."""

from __future__ import annotations

import base64
import io
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nnsee.errors import NnseeError
from nnsee.render import animated_gif, data_uri, png_bytes, save_gif, save_png

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _img(value: int, size: tuple[int, int] = (6, 4)) -> Image.Image:
    return Image.fromarray(np.full((size[1], size[0], 3), value, np.uint8), "RGB")


def test_png_bytes_and_data_uri() -> None:
    data = png_bytes(_img(10))
    assert data.startswith(PNG_SIGNATURE)
    uri = data_uri(_img(10))
    assert uri.startswith("data:image/png;base64,")
    assert base64.b64decode(uri.split(",", 1)[1]) == data
    assert data_uri(data) == uri
    assert Image.open(io.BytesIO(data)).size == (6, 4)


def test_save_png_writes_and_leaves_no_temp(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "a.png"
    save_png(_img(1), path)
    assert Image.open(path).getpixel((0, 0)) == (1, 1, 1)
    assert os.listdir(path.parent) == ["a.png"]


def test_save_png_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "a.png"
    save_png(_img(1), path)
    before = path.read_bytes()

    def fail(src: object, dst: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(NnseeError, match="disk full.*previous file is intact"):
        save_png(_img(200), path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["a.png"]  # the temporary file was removed


def test_gif_round_trip_pads_frames(tmp_path: Path) -> None:
    frames = [_img(0), _img(120, (8, 4)), _img(250, (6, 9))]
    data = animated_gif(frames, duration_ms=200)
    gif = Image.open(io.BytesIO(data))
    assert gif.format == "GIF" and gif.n_frames == 3 and gif.size == (8, 9)
    assert gif.info.get("loop") == 0
    path = save_gif(frames, tmp_path / "e.gif")
    assert Image.open(path).n_frames == 3
    with pytest.raises(ValueError):
        animated_gif([])
