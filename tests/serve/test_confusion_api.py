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


CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SHOTS = Path("/tmp/shots/h2")


@pytest.mark.skipif(not CHROMIUM.exists(), reason="chromium is missing: apt-get install chromium (done by .ci/run)")
def test_live_page_click_a_cell_shows_its_images(noisy: dict[str, Path]) -> None:
    from urllib.parse import urlparse

    from serve.serve_util import start_server, stop

    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is needed for the Chromium test")
    cells = members(noisy["cnn"], noisy["npz"])
    i, j = max((c for c in cells if c[0] != c[1]), key=lambda c: len(cells[c]))
    server = start_server([noisy["softmax"], noisy["cnn"]])
    errors: list[str] = []
    outside: list[str] = []
    SHOTS.mkdir(parents=True, exist_ok=True)
    try:
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1300, "height": 1000})
                page.on("pageerror", lambda e: errors.append(str(e)))
                page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)

                def guard(route: object) -> None:
                    url = urlparse(route.request.url)  # type: ignore[attr-defined]
                    if url.scheme == "data" or (url.scheme == "http" and url.hostname == "127.0.0.1"):
                        route.continue_()  # type: ignore[attr-defined]
                    else:
                        outside.append(route.request.url)  # type: ignore[attr-defined]
                        route.abort()  # type: ignore[attr-defined]

                page.route("**/*", guard)
                page.goto(server.base + "/")
                page.wait_for_selector("#confusion-matrix table.confusion")
                page.select_option("#confusion-run", "cnn")
                button = page.locator(f'#confusion-matrix button.cell[data-i="{i}"][data-j="{j}"]')
                sync_api.expect(button).to_have_text(str(len(cells[(i, j)])))
                assert page.locator("#confusion-matrix button.cell").count() == len(cells)
                button.click()
                figures = page.locator("#confusion-cell figure")
                sync_api.expect(figures).to_have_count(min(len(cells[(i, j)]), CAP))
                shown = figures.evaluate_all("els => els.map(e => Number(e.dataset.index))")
                assert shown == cells[(i, j)][:CAP]
                loaded = page.locator("#confusion-cell img").evaluate_all(
                    "els => els.map(e => e.complete && e.naturalWidth > 0)")
                assert len(loaded) == 2 * len(shown) and all(loaded)
                assert HOSTILE_NAMES[i] in page.inner_text("#confusion-cell h3")  # the name as text
                page.locator("#confusion-view").screenshot(path=str(SHOTS / "serve-cell.png"))
            finally:
                browser.close()
    finally:
        stop(server)
    assert errors == [] and outside == []
