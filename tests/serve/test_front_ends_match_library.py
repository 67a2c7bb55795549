"""`nnsee explain --json` and the page's `/api/explain` give the library's numbers for the same image.

The test makes the images itself (uint8 arrays saved as PNGs at the run's size, so decoding is ``a / 255``),
standardizes them by the README's formula, computes logits with the model and softmax in float64 itself, and calls
the library's functions directly; the page's maps are read back from its PNG tiles through matplotlib's ``RdBu_r``.
"""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image
from serve.serve_util import png
from tiny import HOSTILE_NAMES
from torch import nn

from nnsee.cli import main
from nnsee.methods import explain
from nnsee.methods.attribution import (
    deconvnet,
    grad_cam,
    gradient_x_input,
    guided_backprop,
    integrated_gradients,
    occlusion,
    saliency,
)
from nnsee.train import load_run

SIDE = 8


def _image(k: int, seed: int) -> np.ndarray:
    """An asymmetric uint8 image: noise, class k's band (rows 2k..2k+2), brighter to the right."""
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 50, size=(SIDE, SIDE))
    a[2 * k : 2 * k + 3] += np.linspace(120, 205, SIDE).astype(int)
    return a.astype(np.uint8)


IMAGES = [_image(0, 1), _image(1, 2), _image(2, 3)]


def _standardized(a: np.ndarray) -> np.ndarray:
    """README: x' = (x - mean(x)) / (||x - mean(x)|| / sqrt(D)), for one (H, W) uint8 image, as (1, 1, H, W)."""
    c = a.astype(np.float64) / 255.0
    c -= c.mean()
    return (c / (np.linalg.norm(c) / np.sqrt(c.size))).astype(np.float32)[None, None]


def _probabilities(model: nn.Module, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(logits, softmax) of one standardized image, the softmax in float64 here."""
    with torch.no_grad():
        z = model(torch.from_numpy(x)).double().numpy()[0]
    e = np.exp(z - z.max())
    return z, e / e.sum()


def _close(got: object, want: np.ndarray, rel: float = 1e-5) -> None:
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape
    scale = max(float(np.abs(want).max()), 1e-12)
    assert float(np.abs(got - want).max()) <= rel * scale, f"differs by {np.abs(got - want).max():.3g} of {scale:.3g}"


def _library(method: str, model: nn.Module, x: np.ndarray, k: int, output: str) -> np.ndarray:
    """The library's map (C', H, W) for one image, by calling the method's function directly."""
    t = np.array([k])
    if method == "integrated-gradients":
        return integrated_gradients(model, x, t, output=output).attributions[0]
    if method == "grad-cam":
        layer = [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)][-1]
        return grad_cam(model, x, t, layer=layer, output=output, upsample=True)[0][None]
    if method == "occlusion":  # the CLI's window for 8 px: max(2, round(8 / 7)) = 2, moved by 1
        return occlusion(model, x, t, window=2, stride=1, output=output)[0]
    return {"saliency": saliency, "gradient-x-input": gradient_x_input, "guided-backprop": guided_backprop,
            "deconvnet": deconvnet}[method](model, x, t, output=output)[0]


@pytest.fixture(scope="module")
def image_files(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("images")
    paths = [folder / f"img{i}.png" for i in range(len(IMAGES))]
    for a, p in zip(IMAGES, paths, strict=True):
        p.write_bytes(png(a))
    return paths


def _cli(run: Path, images: list[Path], out: Path, *options: str) -> list[dict]:
    result = CliRunner().invoke(main, ["explain", str(run), *map(str, images), "--out", str(out), "--json", *options])
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)["images"]


@pytest.mark.parametrize("output", ["logit", "softmax"])
@pytest.mark.parametrize("method", ["saliency", "gradient-x-input", "integrated-gradients", "guided-backprop",
                                    "deconvnet", "grad-cam", "occlusion"])
def test_cli_attribution_maps_equal_the_library(serve_runs: dict[str, Path], image_files: list[Path],
                                                tmp_path: Path, method: str, output: str) -> None:
    model = load_run(serve_runs["cnn"]).model
    xs = [_standardized(a) for a in IMAGES]
    for target in (None, "2", HOSTILE_NAMES[1]):
        options = ["--method", method, "--output", output] + ([] if target is None else ["--target", target])
        answers = _cli(serve_runs["cnn"], image_files, tmp_path, *options)
        assert len(answers) == len(IMAGES)
        for x, got in zip(xs, answers, strict=True):
            _, p = _probabilities(model, x)
            k = int(np.argmax(p)) if target is None else (2 if target == "2" else 1)
            assert got["predicted"] == HOSTILE_NAMES[int(np.argmax(p))] and got["target"] == HOSTILE_NAMES[k]
            assert got["probability"] == pytest.approx(p.max(), rel=1e-6)
            _close([got["probabilities"][n] for n in HOSTILE_NAMES], p, 1e-6)
            want = _library(method, model, x, k, output)
            _close(got["map"]["values"], want)
            assert got["map"]["shape"] == list(want.shape)
            _close([got["map"][s] for s in ("sum", "min", "max")], [want.sum(), want.min(), want.max()])
            if method == "occlusion":
                assert (got["window"], got["stride"]) == (2, 1)


@pytest.mark.parametrize("kind", ["softmax", "mlp"])
def test_cli_contributions_equal_the_library(serve_runs: dict[str, Path], image_files: list[Path], tmp_path: Path,
                                            kind: str) -> None:
    """Scores against the model's own logits and weights; maps ``x ⊙ W`` from the weights; units as the library's."""
    model = load_run(serve_runs[kind]).model
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    first, last = (m.weight.detach().double().numpy() for m in (linears[0], linears[-1]))
    bias = linears[-1].bias.detach().double().numpy()
    for x, got in zip(map(_standardized, IMAGES), _cli(serve_runs[kind], image_files, tmp_path), strict=True):
        z, p = _probabilities(model, x)
        e = explain(model, x[0], (1, SIDE, SIDE))
        classes = [got["classes"][n] for n in HOSTILE_NAMES]
        assert got["predicted"] == HOSTILE_NAMES[int(np.argmax(p))]
        _close([c["probability"] for c in classes], p, 1e-6)
        _close([c["logit"] for c in classes], z)
        _close([c["bias"] for c in classes], bias)
        _close([c["contribution_sum"] for c in classes], z - bias)
        products = x.reshape(1, -1).astype(np.float64) * first  # x ⊙ W_k (softmax) or x ⊙ W_1[j] (MLP)
        if kind == "softmax":
            _close([c["map"] for c in classes], products.reshape(-1, 1, SIDE, SIDE))
            continue
        assert [u["unit"] for u in got["units"]] == [int(u) for u in e.top_units]
        with torch.no_grad():
            h = model.act1(model.fc1(torch.from_numpy(x).flatten(1))).double().numpy()[0]
        for u in got["units"]:
            j = u["unit"]
            _close(u["map"], products[j].reshape(1, SIDE, SIDE))
            _close([u["pre_activation"]], [products[j].sum() + model.fc1.bias[j].item()])
            _close([u["activation"]], [h[j]])
            _close([u["votes"][n] for n in HOSTILE_NAMES], last[:, j] * h[j])


# The page: its maps come as PNG tiles on RdBu_r centred at 0 with a symmetric scale (the drawing conventions of
# nnsee.render.colormap).

def _tile(uri: str, side: int = SIDE) -> np.ndarray:
    """One value per pixel of the map, in [-1, 1], read back from a tile (nearest upscale) via matplotlib's RdBu_r."""
    from matplotlib import colormaps

    assert uri.startswith("data:image/png;base64,")
    rgb = np.asarray(Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))).convert("RGB"), np.float64)
    up = rgb.shape[0] // side
    assert rgb.shape[:2] == (side * up, side * up)
    rgb = rgb[up // 2 :: up, up // 2 :: up]
    lut = np.round(colormaps["RdBu_r"].resampled(256)(np.linspace(0, 1, 256))[:, :3] * 255)
    index = np.argmin(((rgb[:, :, None, :] - lut) ** 2).sum(-1), axis=-1)
    return index / 255 * 2 - 1


def _same_tile(uri: str, values: np.ndarray, scale: float) -> None:
    """The tile shows ``values`` (H, W) / ``scale`` up to the 256 colours' steps."""
    assert np.abs(_tile(uri) - values / scale).max() <= 2.5 / 255


def _page(server, run: str, a: np.ndarray) -> dict:
    status, body = server.raw("POST", f"/api/explain?run={run}", png(a), {"Content-Type": "image/png"})
    assert status == 200, body
    return json.loads(body)


def _input_is_the_image(d: dict, a: np.ndarray) -> None:
    shown = np.asarray(Image.open(io.BytesIO(base64.b64decode(d["input"].split(",", 1)[1]))).convert("L"))
    up = shown.shape[0] // SIDE
    assert np.array_equal(shown[up // 2 :: up, up // 2 :: up], a)


@pytest.mark.parametrize("kind", ["softmax", "mlp", "cnn"])
def test_page_numbers_and_maps_equal_the_library(server, serve_runs: dict[str, Path], kind: str) -> None:
    model = load_run(serve_runs[kind]).model
    for a in IMAGES:
        x = _standardized(a)
        z, p = _probabilities(model, x)
        k = int(np.argmax(p))
        d = _page(server, kind, a)
        _input_is_the_image(d, a)
        assert d["predicted"] == k and d["label"] == HOSTILE_NAMES[k]
        _close(d["logits"], z)
        _close(d["probabilities"], p, 1e-6)
        if kind == "softmax":
            e = explain(model, x[0], (1, SIDE, SIDE))
            scale = float(np.abs(e.contributions).max())
            for j, shown in enumerate(d["maps"]):
                assert shown["value"] == pytest.approx(z[j], rel=1e-5, abs=1e-5)
                _same_tile(shown["src"], e.contributions[j, 0], scale)
        elif kind == "mlp":
            e = explain(model, x[0], (1, SIDE, SIDE))
            scale = float(np.abs(e.pixel_contributions).max())
            assert [u["unit"] for u in d["units"]] == [int(u) for u in e.top_units[:9]]
            for i, (u, shown) in enumerate(zip(e.top_units, d["units"], strict=False)):
                _close([shown["activation"], shown["vote"]], [e.hidden[u], e.votes[k, u]])
                _close(shown["votes"], e.votes[:, u])
                _same_tile(shown["src"], e.pixel_contributions[i, 0], scale)
        else:
            for method, shown in zip(("saliency", "occlusion", "guided-backprop"), d["maps"], strict=True):
                assert shown["label"].startswith(method)
                want = _library(method, model, x, k, "logit").sum(axis=0)
                scale = float(np.abs(want).max())
                assert shown["value"] == pytest.approx(scale, rel=1e-5)
                _same_tile(shown["src"], want, scale)
