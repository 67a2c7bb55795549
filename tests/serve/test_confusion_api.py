"""The live drill-down's routes: the test matrix and each cell's images are exactly the model's (a plain forward pass
and argmax here), capped with the full count; bad cells, unknown runs and a run whose data is gone are one-line 404s."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from tiny import HOSTILE_NAMES, banded_npz

from nnsee.data import load_data
from nnsee.methods.confusion_cells import CAP
from nnsee.models import build_model
from nnsee.train import TrainConfig, fit, load_run

TestClient = pytest.importorskip("starlette.testclient", reason="httpx is needed for the TestClient").TestClient


@pytest.fixture(scope="module")
def noisy(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Three runs on a noisy banded set (hostile class names) that confuse its classes; up to ~40 images a cell."""
    root = tmp_path_factory.mktemp("noisy")
    banded_npz(root / "noisy.npz", 300, 8, width=2, noise=1.0, signal=0.2, class_names=HOSTILE_NAMES)
    splits = load_data(str(root / "noisy.npz"), seed=0)
    out = {"npz": root / "noisy.npz"}
    for name, options in [("softmax", {}), ("mlp", {"hidden": [10]}), ("cnn", {"channels": [3], "kernel": 3})]:
        torch.manual_seed(0)
        model = build_model(name, splits.shape, splits.train.n_classes, **options)
        fit(model, splits, TrainConfig(epochs=2, batch_size=16, lr=0.01), root / name, progress=False)
        out[name] = root / name
    return out


def members(run_path: Path, npz: Path) -> dict[tuple[int, int], list[int]]:
    run = load_run(run_path)
    test = load_data(str(npz), seed=0).test
    with torch.no_grad():
        predicted = run.model.eval()(torch.as_tensor(run.standardize(np.asarray(test.images)))).argmax(1).numpy()
    cells: dict[tuple[int, int], list[int]] = {}
    for n, (i, j) in enumerate(zip(test.labels.tolist(), predicted.tolist(), strict=True)):
        cells.setdefault((i, j), []).append(n)
    return cells


@pytest.fixture(scope="module")
def client(noisy: dict[str, Path]) -> TestClient:
    from nnsee.serve.app import create_app

    return TestClient(create_app([noisy["softmax"], noisy["mlp"], noisy["cnn"]]), base_url="http://127.0.0.1:8000")


@pytest.mark.parametrize("name", ["softmax", "mlp", "cnn"])
def test_the_matrix_and_every_cell_are_the_models_own(name: str, noisy: dict[str, Path], client: TestClient) -> None:
    cells = members(noisy[name], noisy["npz"])
    assert sum(i != j for i, j in cells) >= 2 and max(len(v) for v in cells.values()) > CAP  # mistakes; the cap bites
    d = client.get(f"/api/runs/{name}/confusion").json()
    assert d["class_names"] == HOSTILE_NAMES and d["cap"] == CAP
    assert d["matrix"] == [[len(cells.get((i, j), [])) for j in range(3)] for i in range(3)]
    for i in range(3):
        for j in range(3):
            cell = client.get(f"/api/runs/{name}/confusion/{i}/{j}").json()
            want = cells.get((i, j), [])
            assert cell["count"] == len(want)
            assert [it["index"] for it in cell["images"]] == want[:CAP]
            assert (cell["true"], cell["predicted"]) == (HOSTILE_NAMES[i], HOSTILE_NAMES[j])
            for it in cell["images"]:
                assert it["image"].startswith("data:image/png;base64,") and it["map"].startswith("data:image/png")
                assert 0 < it["p"] <= 1
            assert cell["kind"] == ({"softmax": "contributions", "mlp": "unit", "cnn": "gradient-x-input"}[name]
                                    if want else None)


def test_bad_cells_and_runs_are_one_line_404s(client: TestClient) -> None:
    for path, said in [("/api/runs/softmax/confusion/3/0", "true class 3 does not exist"),
                       ("/api/runs/softmax/confusion/0/-1", "predicted class -1 does not exist"),
                       ("/api/runs/nope/confusion", "no run called 'nope'")]:
        r = client.get(path)
        assert r.status_code == 404 and said in r.json()["detail"] and "\n" not in r.json()["detail"]
    assert client.get("/api/runs/softmax/confusion/x/0").status_code == 422


def test_a_run_whose_data_is_gone_is_a_404(noisy: dict[str, Path], tmp_path: Path) -> None:
    from nnsee.serve.app import create_app

    npz = tmp_path / "moved.npz"
    shutil.copy(noisy["npz"], npz)
    run = tmp_path / "run"
    shutil.copytree(noisy["softmax"], run)
    meta = (run / "run.json").read_text(encoding="utf-8")
    (run / "run.json").write_text(meta.replace(str(noisy["npz"]), str(npz)), encoding="utf-8")
    npz.unlink()
    app = TestClient(create_app([run]), base_url="http://127.0.0.1:8000")
    r = app.get("/api/runs/run/confusion")
    assert r.status_code == 404 and "test images cannot be read" in r.json()["detail"]
    assert app.get("/api/runs/run/confusion/0/0").status_code == 404
