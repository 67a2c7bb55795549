"""The live representation map's routes against the library: the map (PCA at each snapshot, aligned; t-SNE of the
final weights) is representation_map's on the run's own test set; a drawn image's nearest training images are
nearest_training's over the whole training split (itself first when it is a training image); bad methods, unknown
runs and a run whose data is gone are one-line errors."""

from __future__ import annotations

import base64
import io
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from serve.serve_util import png
from tiny import HOSTILE_NAMES, banded_npz

from nnsee.data import load_data
from nnsee.methods.representation import nearest_training, representation_map
from nnsee.models import build_model
from nnsee.train import TrainConfig, fit, load_run

TestClient = pytest.importorskip("starlette.testclient", reason="httpx is needed for the TestClient").TestClient


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("rep")
    banded_npz(root / "bands.npz", 90, 8, width=2, noise=0.3, signal=0.7, class_names=HOSTILE_NAMES)
    splits = load_data(str(root / "bands.npz"), seed=0)
    torch.manual_seed(0)
    model = build_model("mlp", splits.shape, splits.train.n_classes, hidden=[10])
    fit(model, splits, TrainConfig(epochs=3, batch_size=16, lr=0.01, snapshots=[1, 2, 3]), root / "mlp",
        progress=False)
    shutil.copytree(root / "mlp", root / "gone")
    gone_npz = root / "gone.npz"
    shutil.copy(root / "bands.npz", gone_npz)
    meta = (root / "gone" / "run.json").read_text().replace(str(root / "bands.npz"), str(gone_npz))
    (root / "gone" / "run.json").write_text(meta)
    gone_npz.unlink()
    return {"npz": root / "bands.npz", "mlp": root / "mlp", "gone": root / "gone"}


@pytest.fixture(scope="module")
def client(runs: dict[str, Path]) -> TestClient:
    from nnsee.serve.app import create_app

    return TestClient(create_app([runs["mlp"], runs["gone"]]), base_url="http://127.0.0.1:8000")


def test_the_pca_map_is_the_librarys(runs: dict[str, Path], client: TestClient) -> None:
    d = client.get("/api/runs/mlp/representation?method=pca").json()
    run, test = load_run(runs["mlp"]), load_data(str(runs["npz"]), seed=0).test
    want = representation_map(run.model, test.images, test.labels, transform=run.standardize,
                              snapshots={e: run.snapshot_state(e) for e in (1, 2)})
    assert d["epochs"] == [1, 2, None] and d["class_names"] == HOSTILE_NAMES and d["layer"] == want.layer
    assert d["index"] == want.index.tolist() and d["labels"] == want.labels.tolist() and d["n"] == len(test)
    np.testing.assert_allclose(np.array(d["frames"]), want.frames, atol=1e-3)
    sprite = Image.open(io.BytesIO(base64.b64decode(d["sprite"].split(",", 1)[1])))
    tiles = np.asarray(sprite.convert("L"), dtype=np.float64) / 255
    assert d["tile"] == [8, 8]
    for i in (0, 5, d["n"] - 1):  # image i is the tile at row i // columns, column i % columns
        row, col = divmod(i, d["columns"])
        np.testing.assert_allclose(tiles[row * 8 : row * 8 + 8, col * 8 : col * 8 + 8],
                                   np.clip(test.images[d["index"][i]][0], 0, 1), atol=1 / 255)
    assert client.get("/api/runs/mlp/representation?method=pca").json() == d  # kept


def test_tsne_is_of_the_final_weights(client: TestClient) -> None:
    d = client.get("/api/runs/mlp/representation?method=tsne").json()
    assert d["method"] == "tsne" and d["epochs"] == [None] and d["explained"] == [None]
    assert np.isfinite(np.array(d["frames"])).all()


def test_nearest_training_images_of_a_posted_image(runs: dict[str, Path], client: TestClient) -> None:
    run, train = load_run(runs["mlp"]), load_data(str(runs["npz"]), seed=0).train
    image = np.round(np.clip(train.images[7], 0, 1) * 255) / 255  # exactly what a PNG of it decodes to
    r = client.post("/api/neighbours?run=mlp", content=png((image[0] * 255).astype(np.uint8)),
                    headers={"content-type": "image/png"})
    assert r.status_code == 200, r.text
    d = r.json()
    want = nearest_training(run.model, run.standardize(image[None].astype(np.float32)), train.images, k=8,
                            transform=run.standardize)
    assert [n["index"] for n in d["neighbours"]] == want.index[0].tolist() and d["searched"] == len(train)
    np.testing.assert_allclose([n["distance"] for n in d["neighbours"]], want.distance[0], atol=1e-4)
    assert d["neighbours"][0]["index"] == 7 and d["neighbours"][0]["distance"] < 1e-3
    assert [n["label"] for n in d["neighbours"]] == [HOSTILE_NAMES[train.labels[i]] for i in want.index[0]]
    assert all(n["image"].startswith("data:image/png;base64,") for n in d["neighbours"])


def test_bad_requests_are_one_line_errors(client: TestClient) -> None:
    r = client.get("/api/runs/mlp/representation?method=umap")
    assert r.status_code == 422 and "umap" in r.json()["detail"] and "\n" not in r.json()["detail"]
    assert client.get("/api/runs/nope/representation").status_code == 404
    assert client.post("/api/neighbours?run=nope", content=b"x").status_code == 404
    r = client.post("/api/neighbours?run=mlp", content=b"not an image", headers={"content-type": "image/png"})
    assert r.status_code == 400
    r = client.get("/api/runs/gone/representation")
    assert r.status_code == 404 and "gone" in r.json()["detail"] and "\n" not in r.json()["detail"]
    blank = client.post("/api/neighbours?run=mlp", content=png(np.zeros((8, 8), np.uint8)),
                        headers={"content-type": "image/png"})
    assert blank.json() == {"run": "mlp", "blank": True, "neighbours": []}
