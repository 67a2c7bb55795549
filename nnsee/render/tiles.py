"""Small images from arrays with Pillow only: weight tiles, input tiles, grids with captions, a colour bar.

Many tiles are one colormap lookup each pasted into one Pillow image; no matplotlib figure is created here.

Display normalization (the rule the report states under its CNN section):

* photos (input images, top-9 crops, occlusion inputs) are shown as loaded: values in [0, 1] times 255, clipped,
  per channel, never rescaled (1 channel: grey 'L', 3 channels: 'RGB');
* signed 1-channel arrays (weights, projections) use ``RdBu_r`` with a symmetric scale ``s``: ``v`` maps to
  ``(v / s + 1) / 2`` on the colour map (0 is the map's neutral centre);
* signed 3-channel arrays (first-layer filters of an RGB model, deconvnet projections onto RGB pixels) are colour
  images: ``255 * (0.5 + 0.5 * v / s)`` per channel, clipped, with one symmetric scale ``s = max |v|`` over all three
  channels of the tile (or of a group of tiles that must compare: all first-layer filters share one), so 0 is
  mid-grey and a filter that favours red looks red.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from nnsee.render.bidi import plain
from nnsee.render.colormap import gray_to_uint8, rgb_signed_to_rgb, signed_lut, signed_to_rgb, symmetric_scale

#: Most tiles one :func:`grid` call draws; page larger sets (e.g. 4,096 hidden units) over several grids.
MAX_GRID_TILES = 1024

BACKGROUND = (255, 255, 255)
TEXT_COLOUR = (0, 0, 0)


class TooManyTilesError(ValueError):
    """A grid was asked for more tiles than :data:`MAX_GRID_TILES`; split the tiles into pages."""


def _upscaled(img: Image.Image, upscale: int) -> Image.Image:
    k = int(upscale)
    if k < 1:
        raise ValueError(f"upscale must be a positive integer, got {upscale!r}")
    return img if k == 1 else img.resize((img.width * k, img.height * k), Image.Resampling.NEAREST)


def _chw(a: np.ndarray, name: str) -> np.ndarray:
    a = np.asarray(a)
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3 or a.shape[0] not in (1, 3) or a.shape[1] < 1 or a.shape[2] < 1:
        raise ValueError(f"{name} must have shape (C, H, W) with C = 1 or 3, got {a.shape}")
    return a


def weight_tile(w: np.ndarray, scale: float, upscale: int = 4) -> Image.Image:
    """One weight image: (1, H, W) or (H, W) on the diverging map, (3, H, W) as a colour image; nearest upscale."""
    w = _chw(w, "weights")
    rgb = signed_to_rgb(w[0], scale) if w.shape[0] == 1 else rgb_signed_to_rgb(w, scale)
    return _upscaled(Image.fromarray(rgb, "RGB"), upscale)


def image_tile(x: np.ndarray, upscale: int = 4) -> Image.Image:
    """One input image in [0, 1]: (1, H, W) or (H, W) gives an 'L' image, (3, H, W) an 'RGB' image."""
    x = _chw(x, "image")
    g = gray_to_uint8(x)
    if x.shape[0] == 1:
        img = Image.fromarray(g[0], "L")
    else:
        img = Image.fromarray(np.ascontiguousarray(g.transpose(1, 2, 0)), "RGB")
    return _upscaled(img, upscale)


def weight_tiles(weights: np.ndarray, shared: bool = True, upscale: int = 4) -> tuple[list[Image.Image], list[float]]:
    """Tiles of N weight images (N, C, H, W) and the scale each was drawn with.

    ``shared=True``: one symmetric scale (max |finite w| over all tiles) so tiles compare; ``False``: each tile its
    own max |finite w|.
    """
    w = np.asarray(weights)
    if w.ndim == 3:
        w = w[:, None]
    if w.ndim != 4:
        raise ValueError(f"weights must have shape (N, C, H, W), got {w.shape}")
    common = symmetric_scale(w) if shared else None
    scales = [common if common is not None else symmetric_scale(t) for t in w]
    return [weight_tile(t, s, upscale) for t, s in zip(w, scales, strict=True)], scales


@lru_cache(maxsize=1)
def _font() -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    return ImageFont.load_default()


def _safe_text(draw: ImageDraw.ImageDraw, text: object) -> str:
    """``text`` as one line the default font can draw, without bidi controls: other characters become '?' (never
    raises)."""
    s = " ".join(plain(text).split())
    font = _font()
    try:
        draw.textbbox((0, 0), s, font=font)
        return s
    except (UnicodeError, ValueError, OSError):
        pass
    out = []
    for ch in s:
        try:
            draw.textbbox((0, 0), ch, font=font)
            out.append(ch)
        except (UnicodeError, ValueError, OSError):
            out.append("?")
    return "".join(out)


def _text_size(draw: ImageDraw.ImageDraw, s: str) -> tuple[int, int]:
    if not s:
        return 0, 0
    left, top, right, bottom = draw.textbbox((0, 0), s, font=_font())
    return int(right - min(left, 0)), int(bottom - min(top, 0))


def _fit(draw: ImageDraw.ImageDraw, s: str, width: int) -> str:
    """Shorten ``s`` with an ellipsis until it fits ``width`` pixels."""
    if _text_size(draw, s)[0] <= width:
        return s
    while s and _text_size(draw, s + "...")[0] > width:
        s = s[:-1]
    return s + "..." if s else ""


def _line_height() -> int:
    d = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    return _text_size(d, "Ag|")[1] + 2


def grid(
    tiles: Sequence[Image.Image],
    ncols: int,
    captions: Sequence[object] | None = None,
    title: str | None = None,
    note: str | None = None,
    pad: int = 2,
) -> Image.Image:
    """Paste tiles row by row into one RGB image, with optional captions under tiles, a title above and a note below.

    Cells are as large as the largest tile (smaller tiles are centred). Captions are shortened to the cell width;
    characters the default font cannot draw become '?'. At most :data:`MAX_GRID_TILES` tiles per grid (raises
    :class:`TooManyTilesError`: paginate).
    """
    n = len(tiles)
    if n > MAX_GRID_TILES:
        raise TooManyTilesError(
            f"grid got {n} tiles; at most {MAX_GRID_TILES} per grid: split them into pages of {MAX_GRID_TILES} or fewer"
        )
    if captions is not None and len(captions) != n:
        raise ValueError(f"got {len(captions)} captions for {n} tiles")
    ncols = max(1, min(int(ncols), max(n, 1)))
    nrows = max(1, -(-n // ncols))
    pad = max(0, int(pad))
    cw = max((t.width for t in tiles), default=1)
    ch = max((t.height for t in tiles), default=1)
    lh = _line_height()
    cap_h = lh if captions is not None else 0
    scratch = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    title_s = _safe_text(scratch, title) if title else ""
    note_s = _safe_text(scratch, note) if note else ""
    title_h = lh + pad if title_s else 0
    note_h = lh + pad if note_s else 0
    width = pad + ncols * (cw + pad)
    width = max(width, _text_size(scratch, title_s)[0] + 2 * pad, _text_size(scratch, note_s)[0] + 2 * pad)
    height = pad + title_h + nrows * (ch + cap_h + pad) + note_h
    out = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(out)
    font = _font()
    if title_s:
        draw.text((pad, pad), title_s, fill=TEXT_COLOUR, font=font)
    y0 = pad + title_h
    for i, tile in enumerate(tiles):
        r, c = divmod(i, ncols)
        x = pad + c * (cw + pad)
        y = y0 + r * (ch + cap_h + pad)
        t = tile if tile.mode in ("RGB", "L") else tile.convert("RGB")
        out.paste(t, (x + (cw - t.width) // 2, y + (ch - t.height) // 2))
        if captions is not None:
            s = _fit(draw, _safe_text(draw, captions[i]), cw)
            tw = _text_size(draw, s)[0]
            draw.text((x + max(0, (cw - tw) // 2), y + ch + 1), s, fill=TEXT_COLOUR, font=font)
    if note_s:
        draw.text((pad, height - note_h), note_s, fill=TEXT_COLOUR, font=font)
    return out


def colorbar(scale: float, width: int = 160, height: int = 12) -> Image.Image:
    """A horizontal ``RdBu_r`` bar from -scale to +scale with "-s", "0" and "+s" labels under it (values printed)."""
    width, height = max(int(width), 8), max(int(height), 1)
    lut = signed_lut()
    idx = np.floor(np.linspace(0, len(lut) - 1, width) + 0.5).astype(np.intp)
    bar = np.broadcast_to(lut[idx][None], (height, width, 3))
    lh = _line_height()
    out = Image.new("RGB", (width, height + lh + 1), BACKGROUND)
    out.paste(Image.fromarray(np.ascontiguousarray(bar), "RGB"), (0, 0))
    draw = ImageDraw.Draw(out)
    s = float(scale) if np.isfinite(scale) else 0.0
    labels = [f"-{abs(s):.3g}", "0", f"+{abs(s):.3g}"]
    font = _font()
    for k, text in enumerate(labels):
        tw = _text_size(draw, text)[0]
        x = [0, (width - tw) // 2, width - tw][k]
        draw.text((max(0, x), height + 1), text, fill=TEXT_COLOUR, font=font)
    return out


def mosaic(images: np.ndarray, ncols: int, upscale: int = 1, pad: int = 1) -> Image.Image:
    """Images (N, C, H, W) in [0, 1] side by side, ``ncols`` per row, white gaps of ``pad``; one array op, no loop.

    Grayscale stays one channel ('L'), RGB stays 'RGB'. Missing cells of the last row are white.
    """
    x = np.asarray(images, dtype=np.float32)
    if x.ndim != 4 or x.shape[1] not in (1, 3) or len(x) == 0:
        raise ValueError(f"expected images of shape (N, 1 or 3, H, W) with N >= 1, got {x.shape}")
    n, c, h, w = x.shape
    rows = -(-n // ncols)
    cells = np.ones((rows * ncols, c, h + pad, w + pad), dtype=np.float32)
    cells[:n, :, :h, :w] = np.nan_to_num(np.clip(x, 0, 1), nan=1.0)
    sheet = cells.reshape(rows, ncols, c, h + pad, w + pad).transpose(0, 3, 1, 4, 2)
    sheet = sheet.reshape(rows * (h + pad), ncols * (w + pad), c)[: rows * (h + pad) - pad, : ncols * (w + pad) - pad]
    pixels = (sheet * 255 + 0.5).astype(np.uint8)
    if upscale > 1:
        pixels = pixels.repeat(upscale, axis=0).repeat(upscale, axis=1)
    return Image.fromarray(pixels[..., 0] if c == 1 else pixels, "L" if c == 1 else "RGB")
