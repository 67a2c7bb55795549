"""`nnsee explain --json` and `nnsee report` from the command line."""

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
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("cli")
    x, _ = banded_npz(base / "d.npz", 30, 10, step=3, width=3, noise=0.2, signal=0.8, seed=1)
    Image.fromarray((x[0] * 255).astype(np.uint8)).resize((30, 30)).save(base / "zero.png")
    runs = {}
    for name in ("softmax", "mlp"):
        result = CliRunner().invoke(main, ["train", "--data", str(base / "d.npz"), "--model", name, "--hidden", "6",
                                           "--epochs", "3", "--out", str(base / name)])
        assert result.exit_code == 0, result.stderr
        runs[name] = base / name
    runs["image"] = base / "zero.png"
    return runs


@pytest.mark.parametrize("name", ["softmax", "mlp"])
def test_explain_json_scores_add_up(trained: dict[str, Path], name: str) -> None:
    result = CliRunner().invoke(main, ["explain", str(trained[name]), str(trained["image"]), "--json"])
    assert result.exit_code == 0, result.stderr
    answer = json.loads(result.stdout)
    (image,) = answer["images"]
    assert Path(image["png"]).exists()
    probabilities = [c["probability"] for c in image["classes"].values()]
    assert sum(probabilities) == pytest.approx(1.0, abs=1e-5)
    for scores in image["classes"].values():
        assert scores["contribution_sum"] + scores["bias"] == pytest.approx(scores["logit"], abs=1e-4)


def test_explain_refuses_a_non_image(trained: dict[str, Path], tmp_path: Path) -> None:
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not a png")
    result = CliRunner().invoke(main, ["explain", str(trained["softmax"]), str(junk)])
    assert result.exit_code == 1
    assert "junk.png" in result.stderr


def test_explain_says_when_a_colour_image_is_made_grey(trained: dict[str, Path], tmp_path: Path) -> None:
    """A grey model given an RGB photo: converted to grey and said in one line; a grey PNG is not mentioned."""
    colour = tmp_path / "colour.png"
    pixels = np.zeros((30, 30, 3), np.uint8)
    pixels[:, 10:20] = (200, 30, 30)  # a red band: contrast survives the conversion
    Image.fromarray(pixels).save(colour)
    said = CliRunner().invoke(main, ["explain", str(trained["softmax"]), str(colour), "--out", str(tmp_path)])
    assert said.exit_code == 0, said.stderr
    assert "colour.png: a colour image for a model of 1 channel: converted to grey" in said.stderr
    quiet = CliRunner().invoke(main, ["explain", str(trained["softmax"]), str(trained["image"]), "--out",
                                      str(tmp_path)])
    assert quiet.exit_code == 0 and "channel" not in quiet.stderr


def test_report_command_prints_where_the_page_is(trained: dict[str, Path]) -> None:
    result = CliRunner().invoke(main, ["report", str(trained["mlp"])])
    assert result.exit_code == 0, result.stderr
    assert "file://" in result.stdout
    assert (trained["mlp"] / "report" / "index.html").exists()


@pytest.fixture(scope="module")
def cnn_run(trained: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cnn") / "cnn"
    data = trained["softmax"].parent / "d.npz"
    result = CliRunner().invoke(main, ["train", "--data", str(data), "--model", "cnn", "--channels", "4,8",
                                       "--kernel", "3", "--epochs", "2", "--out", str(out)])
    assert result.exit_code == 0, result.stderr
    return out


@pytest.mark.parametrize("method", ["saliency", "gradient-x-input", "integrated-gradients", "guided-backprop",
                                    "deconvnet", "grad-cam", "occlusion"])
def test_explain_every_attribution_method_on_a_cnn(cnn_run: Path, trained: dict[str, Path], method: str) -> None:
    result = CliRunner().invoke(main, ["explain", str(cnn_run), str(trained["image"]), "--method", method,
                                       "--target", "1", "--output", "softmax", "--json"])
    assert result.exit_code == 0, result.stderr
    (image,) = json.loads(result.stdout)["images"]
    assert image["target"] == "1" and image["output"] == "softmax"
    assert Path(image["png"]).name == f"zero-{method}.png" and Path(image["png"]).exists()
    assert image["map"]["shape"][1:] == [10, 10]
    if method == "integrated-gradients":
        assert abs(image["convergence_delta"][0]) < 0.05


def test_contributions_on_a_cnn_says_what_to_use_instead(cnn_run: Path, trained: dict[str, Path]) -> None:
    result = CliRunner().invoke(main, ["explain", str(cnn_run), str(trained["image"])])
    assert result.exit_code == 1 and "Conv2d" in result.stderr


def test_maximize_writes_an_image_for_a_class_and_a_channel(cnn_run: Path, tmp_path: Path) -> None:
    for target in ("2", "conv1:0"):
        out = tmp_path / f"{target.replace(':', '_')}.png"
        result = CliRunner().invoke(main, ["maximize", str(cnn_run), "--target", target, "--steps", "20",
                                           "--out", str(out)])
        assert result.exit_code == 0, result.stderr
        assert out.exists()
