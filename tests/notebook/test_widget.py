"""The notebook widget's kernel side, without a browser: the traitlets the page sets (an image, a method, a unit)
give the live page's own answers, checked against the model computed here directly; every refusal is one line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("anywidget")

from notebook.jupyter_util import band_png, shared_runs  # noqa: E402
from tiny import HOSTILE_NAMES  # noqa: E402

from nnsee.errors import NnseeError  # noqa: E402
from nnsee.notebook import Explorer  # noqa: E402
from nnsee.serve import views  # noqa: E402
from nnsee.serve.app import MAX_BODY  # noqa: E402
from nnsee.serve.decode import decode_bytes  # noqa: E402
from nnsee.train.run import load_run  # noqa: E402


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return shared_runs(tmp_path_factory)


@pytest.fixture
def explorer(runs: dict[str, Path]) -> Explorer:
    return Explorer([runs["softmax"], load_run(runs["mlp"])])  # a folder and a loaded run


def softmax64(run_path: Path, png: bytes) -> np.ndarray:
    """The run's probabilities for ``png``, computed here: decode, standardize, forward, softmax in float64."""
    run = load_run(run_path)
    x = run.standardize(decode_bytes(png, 8, True)[None])
    with torch.no_grad():
        z = run.model(torch.from_numpy(x)).double()
    return torch.softmax(z, dim=1)[0].numpy()


def test_an_image_gives_each_runs_explanation_as_the_live_page(explorer: Explorer, runs: dict[str, Path]) -> None:
    png = band_png(2)
    explorer.image = png
    assert explorer.error == "" and explorer.done == 1
    assert [r["run"] for r in explorer.results] == ["softmax", "mlp"]
    for result, name in zip(explorer.results, ["softmax", "mlp"], strict=True):
        loaded = views.load(runs[name], name)
        assert result == views.explain_image(loaded, decode_bytes(png, 8, True))
        p = softmax64(runs[name], png)
        np.testing.assert_allclose(result["probabilities"], p, rtol=1e-5, atol=1e-6)
        assert result["predicted"] == int(np.argmax(p)) == 2 and result["label"] == HOSTILE_NAMES[2]
    assert "units" in explorer.results[1] and "units" not in explorer.results[0]

    explorer.view = "saliency"  # the method dropdown: both runs recompute with it
    assert [m["label"].split(" ")[0] for r in explorer.results for m in r["maps"]] == ["saliency", "saliency"]
    assert explorer.done == 2


def test_the_page_sends_bytes_over_the_comm(explorer: Explorer, runs: dict[str, Path]) -> None:
    """The browser's DataView arrives as a memoryview in set_state (the widget protocol's binary buffers)."""
    png = band_png(0)
    explorer.set_state({"image": memoryview(png)})
    assert explorer.image == png and explorer.error == ""
    assert explorer.results[1] == views.explain_image(views.load(runs["mlp"], "mlp"), decode_bytes(png, 8, True))


def test_refusals_are_one_line(explorer: Explorer) -> None:
    explorer.image = band_png(1)
    shown = explorer.results
    explorer.image = b"\x89PNG\r\n\x1a\n but not really"
    assert explorer.error.startswith("not an image of a supported format") and "\n" not in explorer.error
    assert explorer.results == shown  # the last answer stays on the page
    explorer.image = b"\0" * (MAX_BODY + 1)
    assert explorer.error.startswith("body over the 2 MiB") and "\n" not in explorer.error
    explorer.image = b""  # cleared
    assert explorer.results == [] and explorer.error == ""
    explorer.image = np.zeros(1, np.uint8).tobytes() + band_png(0)[1:]  # a broken header
    assert explorer.error and "\n" not in explorer.error
    black = band_png(9)  # rows past the image: all black
    explorer.image = black
    assert explorer.error == "" and [r["blank"] for r in explorer.results] == [True, True]
    assert explorer.done == 6


def test_a_unit_click_gives_its_card(explorer: Explorer, runs: dict[str, Path]) -> None:
    model = load_run(runs["mlp"]).model
    first, second = (m for m in model.modules() if isinstance(m, torch.nn.Linear))
    for j in (0, 7, 11):
        explorer.unit = {"run": "mlp", "unit": j}
        assert explorer.error == ""
        card = explorer.card
        assert card["run"] == "mlp" and card["unit"] == j
        np.testing.assert_allclose(card["outgoing"], second.weight[:, j].detach().numpy(), rtol=1e-6)
        assert card["bias"] == pytest.approx(float(first.bias[j].detach()))
        assert card["promotes"] == HOSTILE_NAMES[int(second.weight[:, j].argmax())]
    explorer.unit = {"run": "mlp", "unit": 12}
    assert explorer.error == "unit 12 does not exist in run 'mlp': pick one of 0..11"
    explorer.unit = {"run": "softmax", "unit": 0}
    assert explorer.error == "run 'softmax' is a softmax model: unit cards need one hidden layer"
    explorer.unit = {"run": "nope", "unit": 0}
    assert explorer.error == "no run called 'nope'; showing softmax, mlp"
    assert card == explorer.card  # refusals leave the last card


def test_runs_and_names_are_checked(runs: dict[str, Path], tmp_path: Path) -> None:
    one = Explorer(str(runs["mlp"]), names=["digits <b>"])
    assert [r["name"] for r in one.runs] == ["digits <b>"]
    assert one.views == list(views.load(runs["mlp"], "x").views)
    with pytest.raises(NnseeError, match="one or two runs side by side, got 3"):
        Explorer([runs["mlp"]] * 3)
    with pytest.raises(NnseeError, match="needs 2 different names"):
        Explorer([runs["mlp"], runs["softmax"]], names=["a", "a"])
    with pytest.raises(NnseeError, match="no run folder"):
        Explorer(tmp_path / "missing")
    two = Explorer([runs["mlp"], runs["mlp"]])
    assert [r["name"] for r in two.runs] == ["mlp", "mlp-2"]
