"""`nnsee explain --json` adds the map's deletion and insertion curves, checked against a float64 brute force."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image
from tiny import banded_npz

from nnsee.cli import main


@pytest.fixture(scope="module")
def softmax_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("explain-curves")
    x, _ = banded_npz(base / "d.npz", 30, 10, step=3, width=3, noise=0.2, signal=0.8, seed=1)
    Image.fromarray((x[0] * 255).astype(np.uint8)).save(base / "zero.png")
    result = CliRunner().invoke(main, ["train", "--data", str(base / "d.npz"), "--model", "softmax", "--epochs", "3",
                                       "--out", str(base / "run")])
    assert result.exit_code == 0, result.stderr
    return base / "run", base / "zero.png"


def explained(run: Path, image: Path, out: Path, method: str) -> dict:
    result = CliRunner().invoke(main, ["explain", str(run), str(image), "--method", method, "--out", str(out),
                                       "--json"])
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)["images"][0]


def brute_force(run_path: Path, image: Path) -> tuple[np.ndarray, np.ndarray, int]:
    """Deletion and insertion of the image for its predicted class, positions in the order of x_i W_k,i (float64)."""
    from nnsee.report.explain import load_images
    from nnsee.train import load_run

    run = load_run(run_path)
    x = run.standardize(load_images(run, [image]))[0].astype(np.float64).ravel()
    w = run.model.out.weight.detach().double().numpy()
    b = run.model.out.bias.detach().double().numpy()
    k = int(np.argmax(w @ x + b))
    order = np.argsort(-(x * w[k]), kind="stable")
    ns = np.round(np.linspace(0, x.size, 21)).astype(int)

    def p(v: np.ndarray) -> float:
        z = w @ v + b
        e = np.exp(z - z.max())
        return float(e[k] / e.sum())

    deletion, insertion = [], []
    for n in ns:
        gone = np.zeros(x.size, bool)
        gone[order[:n]] = True
        deletion.append(p(np.where(gone, 0.0, x)))
        insertion.append(p(np.where(gone, x, 0.0)))
    return np.array(deletion), np.array(insertion), k


@pytest.mark.parametrize("method", ["gradient-x-input", "contributions"])
def test_curves_of_the_map_shown_equal_a_brute_force(softmax_run: tuple[Path, Path], tmp_path: Path,
                                                     method: str) -> None:
    run, image = softmax_run
    entry = explained(run, image, tmp_path, method)
    f = entry["faithfulness"]
    deletion, insertion, _ = brute_force(run, image)
    assert f["fractions"][0] == 0 and f["fractions"][-1] == 1 and len(f["fractions"]) == 21
    np.testing.assert_allclose(f["deletion"], deletion, atol=2e-5)
    np.testing.assert_allclose(f["insertion"], insertion, atol=2e-5)
    fr = np.array(f["fractions"])
    assert f["deletion_auc"] == pytest.approx(float(((deletion[1:] + deletion[:-1]) / 2 * np.diff(fr)).sum()),
                                              abs=2e-5)
    floor = f["random"]
    assert floor["repeats"] == 10 and len(floor["deletion"]) == 21
    assert f["deletion_auc"] < floor["deletion_auc"] and f["insertion_auc"] > floor["insertion_auc"]


def test_random_floor_is_the_same_every_call(softmax_run: tuple[Path, Path], tmp_path: Path) -> None:
    run, image = softmax_run
    a = explained(run, image, tmp_path / "a", "saliency")["faithfulness"]
    b = explained(run, image, tmp_path / "b", "saliency")["faithfulness"]
    for curve in ("deletion", "insertion"):  # the same orders (spans of the forwards may differ: float rounding)
        np.testing.assert_allclose(a[curve], b[curve], rtol=1e-6)
        np.testing.assert_allclose(a["random"][curve], b["random"][curve], rtol=1e-6)
    assert a["random"]["deletion"] != a["deletion"]
