"""ROAR (remove and retrain) on a tiny synthetic set whose informative pixels are known."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from tiny import banded_npz

from nnsee.cli import main
from nnsee.data.imageset import ImageSet, Splits
from nnsee.errors import MethodError
from nnsee.report.roar_study import build_roar_report
from nnsee.studies.roar import check_fractions, remove_top, roar_study


def blocks(n_per_class: int, seed: int) -> ImageSet:
    """8x8 images of noise U(0, 0.3); class k adds 0.7 to the 4 pixels 4k .. 4k+3 (6% of the image)."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(3), n_per_class)
    x = rng.uniform(0, 0.3, size=(len(labels), 1, 64)).astype(np.float32)
    for i, k in enumerate(labels):
        x[i, 0, 4 * k : 4 * k + 4] += 0.7
    return ImageSet(x.reshape(-1, 1, 8, 8), labels, ["a", "b", "c"], source="blocks")


@pytest.fixture(scope="module")
def study():  # noqa: ANN201
    data = Splits(blocks(60, 0), blocks(10, 1), blocks(30, 2), spec={"spec": "blocks"})
    return roar_study(data, methods=["gradient-x-input", "saliency"], fractions=[0.1, 0.5], model="softmax",
                      epochs=15, batch_size=16, seed=0)


def test_removing_the_informative_pixels_drops_accuracy_more_than_random(study) -> None:  # noqa: ANN001
    assert study.base_accuracy > 0.95
    assert study.accuracy["random"][0] > 0.9  # 10% random positions rarely hit the 4 class pixels
    assert study.accuracy["gradient-x-input"][0] < study.accuracy["random"][0] - 0.1
    assert set(study.accuracy) == {"gradient-x-input", "saliency", "random"}
    assert study.examples["random"].shape == (3, 2, 1, 8, 8)


def test_remove_top_sets_the_first_positions_to_the_image_mean() -> None:
    x = np.arange(2 * 2 * 4, dtype=np.float32).reshape(2, 2, 2, 2)  # 2 images, 2 channels, 4 positions
    order = np.array([[3, 0, 1, 2], [1, 2, 3, 0]])
    y = remove_top(x, order, 0.5)
    mean = x.reshape(2, 2, 4).mean(2)
    flat = y.reshape(2, 2, 4)
    np.testing.assert_array_equal(flat[0][:, [3, 0]], np.repeat(mean[0][:, None], 2, 1))
    np.testing.assert_array_equal(flat[0][:, [1, 2]], x.reshape(2, 2, 4)[0][:, [1, 2]])
    np.testing.assert_array_equal(flat[1][:, [1, 2]], np.repeat(mean[1][:, None], 2, 1))
    assert np.array_equal(x, np.arange(16, dtype=np.float32).reshape(2, 2, 2, 2))  # the input is kept


def test_fractions_and_methods_are_checked() -> None:
    assert check_fractions([0.5, 0.1, 0.5]) == [0.1, 0.5]
    for bad in ([], [0.0], [1.0], [1.5]):
        with pytest.raises(MethodError, match="fractions must lie between 0 and 1"):
            check_fractions(bad)
    with pytest.raises(MethodError, match="method"):
        roar_study(Splits(blocks(2, 0), blocks(1, 1), blocks(1, 2)), methods=["nope"])


def test_the_page_is_script_free_and_states_the_table(study, tmp_path: Path) -> None:  # noqa: ANN001
    index = build_roar_report(study, tmp_path)
    html = index.read_text()
    assert html.startswith("<!doctype html>") and "<title>nnsee · " in html
    assert not re.search(r"<script|\son[a-z]+\s*=|javascript:", html, re.IGNORECASE)
    assert "gradient-x-input" in html and "50% removed" in html
    saved = json.loads((tmp_path / "study.json").read_text())
    assert saved["fractions"] == [0.0, 0.1, 0.5] and saved["accuracy"]["random"][0] == saved["base_accuracy"]


def test_cli_study_roar_json(tmp_path: Path) -> None:
    banded_npz(tmp_path / "d.npz", 20, 8, width=2, noise=0.2, signal=0.8)
    result = CliRunner().invoke(main, ["study", "roar", "--data", str(tmp_path / "d.npz"), "--out",
                                       str(tmp_path / "roar"), "--epochs", "2", "--fractions", "20,60", "--methods",
                                       "saliency", "--per-class", "10", "--hidden", "8", "--json"])
    assert result.exit_code == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["fractions"] == [0.0, 0.2, 0.6] and set(answer["accuracy"]) == {"saliency", "random"}
    assert answer["n_train"] == 30 and Path(answer["report"]).exists()
    bad = CliRunner().invoke(main, ["study", "roar", "--data", str(tmp_path / "d.npz"), "--out",
                                    str(tmp_path / "bad"), "--fractions", "0,50"])
    assert bad.exit_code != 0 and "fractions must lie between 0 and 1" in bad.stderr
