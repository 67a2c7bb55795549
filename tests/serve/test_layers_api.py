"""POST /api/layers against the library: the posted image's logits are the model's own on the run's standardized
8x8 image (a PNG of a training image decodes exactly), every layer of the run's nn.Sequential is there in order with
its shape; a blank image, an unknown run and a body that is not an image are one-line answers."""

from __future__ import annotations

import base64
from pathlib import Path

import numpy as np
import pytest
import torch
from serve.serve_util import png

from nnsee.data import load_data
from nnsee.train import load_run

TestClient = pytest.importorskip("starlette.testclient", reason="httpx is needed for the TestClient").TestClient


@pytest.fixture(scope="module")
def client(serve_runs: dict[str, Path]) -> TestClient:
    from nnsee.serve.app import create_app

    return TestClient(create_app([serve_runs["mlp"], serve_runs["cnn"]]), base_url="http://127.0.0.1:8000")


@pytest.mark.parametrize("name", ["mlp", "cnn"])
def test_layers_of_a_posted_image_are_the_models(name: str, serve_runs: dict[str, Path], client: TestClient) -> None:
    run = load_run(serve_runs[name])
    train = load_data(str(serve_runs[name].parent / "bands.npz"), seed=0).train
    image = np.round(np.clip(train.images[3], 0, 1) * 255) / 255  # what a PNG of it decodes to
    r = client.post(f"/api/layers?run={name}", content=png((image[0] * 255).round().astype(np.uint8)),
                    headers={"content-type": "image/png"})
    assert r.status_code == 200, r.text
    d = r.json()
    h = torch.as_tensor(run.standardize(image[None].astype(np.float32)))
    shapes = []
    with torch.no_grad():
        for child_name, child in run.model.eval().named_children():
            h = child(h)
            shapes.append((child_name, " × ".join(map(str, h.shape[1:]))))
    assert [(layer["name"], layer["shape"]) for layer in d["layers"]] == shapes and d["n_layers"] == len(shapes)
    np.testing.assert_allclose(d["logits"], h[0].numpy(), rtol=1e-5, atol=1e-5)
    p = torch.softmax(h[0].double(), 0).numpy()
    np.testing.assert_allclose(d["probabilities"], p, rtol=1e-6)
    assert d["predicted"] == int(p.argmax()) and d["input_shape"] == [1, 8, 8]
    for uri in [d["input"], *(layer["uri"] for layer in d["layers"])]:
        assert uri.startswith("data:image/png;base64,") and base64.b64decode(uri.split(",", 1)[1])[:4] == b"\x89PNG"
    svg = base64.b64decode(d["probabilities_svg"].split(",", 1)[1]).decode()
    assert d["probabilities_svg"].startswith("data:image/svg+xml;base64,") and "<script>alert" not in svg


def test_blank_unknown_and_broken(client: TestClient) -> None:
    blank = png(np.zeros((8, 8), np.uint8))
    r = client.post("/api/layers?run=cnn", content=blank, headers={"content-type": "image/png"})
    assert r.status_code == 200 and r.json() == {"run": "cnn", "blank": True}
    r = client.post("/api/layers?run=nope", content=png(np.zeros((8, 8), np.uint8)))
    assert r.status_code == 404 and "no run called 'nope'" in r.json()["detail"]
    r = client.post("/api/layers?run=cnn", content=b"not an image", headers={"content-type": "image/png"})
    assert r.status_code == 400 and "\n" not in r.json()["detail"]
