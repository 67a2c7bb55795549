"""The watcher of ``nnsee serve --watch RUN``: a folder that does not exist yet, each new epoch, half-written and
mismatched files (the last good state kept, re-read once the folder is whole), the app's routes."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from fastapi.testclient import TestClient
from tiny import make_splits

from nnsee.models import build_model
from nnsee.serve import create_app
from nnsee.serve.watch import RunWatcher
from nnsee.train import TrainConfig, fit, resume

SPLITS = make_splits(n_per_class=10, shape=(1, 6, 6))


def train_one(out: Path, name: str = "mlp", **options: object) -> None:
    """One more epoch into ``out`` (the first: a new run)."""
    if not (out / "run.json").exists():
        torch.manual_seed(0)
        model = build_model(name, SPLITS.shape, 3, **options)
        fit(model, SPLITS, TrainConfig(epochs=1, batch_size=8, lr=0.05), out, progress=False)
    else:
        resume(out, epochs=1, data=SPLITS, progress=False)


def test_waits_for_a_missing_run_then_follows_each_epoch(tmp_path: Path) -> None:
    out = tmp_path / "later" / "run"
    w = RunWatcher(out)
    first = w.poll()
    assert first["status"] == "waiting" and first["epoch"] is None and first["version"] == 0
    assert "nnsee train ... --out" in first["note"]
    seen = []
    for epoch in (1, 2, 3):
        train_one(out, hidden=[5])
        s = w.poll(since=w.version)
        assert s["changed"] and s["status"] == "ready" and s["epoch"] == epoch and s["version"] == epoch
        assert s["history"]["epoch"] == list(range(1, epoch + 1))  # the curve gains a point
        assert s["curves"]["loss"].startswith("data:image/svg+xml;base64,")
        assert s["templates"]["effective"] and len(s["templates"]["templates"]) == 3
        assert s["units"]["layer"] == "fc1" and "5 units" in s["units"]["what"]
        seen.append((s["templates"]["templates"][0]["src"], s["units"]["src"]))
        assert w.poll(since=s["version"]) == {**{k: s[k] for k in ("version", "folder", "note", "status", "epoch")},
                                              "changed": False}
    assert len({t for t, _ in seen}) == 3 and len({u for _, u in seen}) == 3  # the images change every epoch


def test_a_half_written_or_mismatched_file_keeps_the_last_state_and_is_read_again(tmp_path: Path) -> None:
    out = tmp_path / "run"
    train_one(out, "softmax")
    w = RunWatcher(out)
    good = w.poll()
    assert good["epoch"] == 1 and good["templates"]["effective"] is False and good["units"] is None
    text = (out / "run.json").read_text()
    (out / "run.json").write_text(text[: len(text) // 2])  # another program writing it in place
    for _ in range(2):  # tried at each poll, never an exception
        s = w.poll(since=good["version"])
        assert not s["changed"] and s["epoch"] == 1 and "retrying" in s["note"]
    (out / "run.json").write_text(text)
    assert w.poll(since=good["version"])["changed"]  # whole again: read
    train_one(out)  # epoch 2 ...
    new_json = (out / "run.json").read_text()
    (out / "run.json").write_text(text)  # ... but run.json still from epoch 1: between two saves
    s = w.poll(since=w.version)
    assert not s["changed"] and "between its weights and its run.json" in s["note"]
    (out / "run.json").write_text(new_json)
    assert w.poll(since=w.version)["epoch"] == 2
    weights = (out / "model.safetensors").read_bytes()
    (out / "model.safetensors").unlink()  # being replaced
    assert "missing" in w.poll()["note"] and w.poll()["epoch"] == 2
    (out / "model.safetensors").write_bytes(weights)  # back (a new file): read again, the same epoch
    s = w.poll()
    assert s["epoch"] == 2 and s["note"] == ""


def test_routes_and_the_cli_page(tmp_path: Path) -> None:
    out = tmp_path / "run"
    client = TestClient(create_app([], watch=out), base_url="http://127.0.0.1:8000")
    r = client.get("/", follow_redirects=False)
    assert r.status_code in (302, 303, 307) and r.headers["location"] == "/watch"
    page = client.get("/watch")
    assert page.status_code == 200 and '<script src="/static/watch.js"></script>' in page.text
    assert "content-security-policy" in page.headers
    assert client.get("/api/watch").json()["status"] == "waiting"
    train_one(out, "softmax")
    s = client.get("/api/watch", params={"since": 0}).json()
    assert s["changed"] and s["epoch"] == 1
    assert client.get("/static/watch.js").status_code == 200


def test_serving_nothing_is_refused() -> None:
    from nnsee.errors import NnseeError

    with pytest.raises(NnseeError, match="--watch RUN"):
        create_app([])


def test_a_cnn_shows_its_first_layer_filters_and_no_templates(tmp_path: Path) -> None:
    out = tmp_path / "cnn"
    train_one(out, "cnn", channels=[4], kernel=3)
    s = RunWatcher(out).poll()
    assert s["epoch"] == 1 and s["templates"] is None and s["kind"] == "cnn"
    assert s["units"]["layer"] == "conv1" and "4 of 4 filters" in s["units"]["what"]
