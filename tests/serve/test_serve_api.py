"""The JSON API against the real server: runs, explanations per model kind, templates, unit cards, concurrency."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from serve.serve_util import band, png
from tiny import HOSTILE_NAMES


def _get(server, path):
    status, body = server.raw("GET", path)
    return status, json.loads(body)


def _explain(server, run, body):
    status, data = server.raw("POST", f"/api/explain?run={run}", body, {"Content-Type": "image/png"})
    return status, json.loads(data)


def test_serve_runs_lists_the_named_runs(server):
    status, data = _get(server, "/api/runs")
    assert status == 200
    assert [(r["name"], r["kind"]) for r in data["runs"]] == [("softmax", "softmax"), ("mlp", "mlp"), ("cnn", "cnn")]
    assert data["runs"][0]["class_names"] == list(HOSTILE_NAMES) and data["runs"][0]["input_shape"] == [1, 8, 8]


def test_serve_page_and_its_script(server):  # the headers: test_serve_security_headers.py
    status, body = server.raw("GET", "/")
    assert status == 200 and b"<canvas" in body
    conn_status, js = server.raw("GET", "/static/app.js")
    assert conn_status == 200 and b"pointerdown" in js


def test_serve_explains_each_kind(server):
    for run in ("softmax", "mlp", "cnn"):
        for k in range(3):
            status, d = _explain(server, run, band(k))
            assert status == 200, d
            assert d["predicted"] == k and d["label"] == HOSTILE_NAMES[k]
            assert abs(sum(d["probabilities"]) - 1) < 1e-6
            assert d["input"].startswith("data:image/png;base64,")
    _, soft = _explain(server, "softmax", band(0))
    assert len(soft["maps"]) == 3 and all(m["src"].startswith("data:image/png") for m in soft["maps"])
    _, mlp = _explain(server, "mlp", band(1))
    assert 1 <= len(mlp["units"]) <= 9 and len(mlp["units"][0]["votes"]) == 3
    _, cnn = _explain(server, "cnn", band(2))
    assert [m["label"].split(" ")[0] for m in cnn["maps"]] == ["saliency", "occlusion", "guided-backprop"]


def test_serve_transparent_canvas_is_blank(server):
    transparent = png(np.zeros((40, 40, 4), np.uint8), "RGBA")
    status, d = _explain(server, "softmax", transparent)
    assert status == 200 and d["blank"] is True and "predicted" not in d
    status, d = _explain(server, "mlp", png(np.zeros((40, 40), np.uint8)))
    assert status == 200 and d["blank"] is True


def test_serve_templates_and_unit_cards(server):
    status, t = _get(server, "/api/runs/softmax/templates")
    assert status == 200 and [x["label"] for x in t["templates"]] == list(HOSTILE_NAMES)
    assert _get(server, "/api/runs/mlp/templates")[0] == 200
    assert _get(server, "/api/runs/cnn/templates")[0] == 404
    status, card = _get(server, "/api/runs/mlp/units/3")
    assert status == 200 and card["unit"] == 3 and len(card["outgoing"]) == 3
    assert card["incoming"].startswith("data:image/png")
    assert _get(server, "/api/runs/mlp/units/12")[0] == 404
    assert _get(server, "/api/runs/softmax/units/0")[0] == 404
    assert _get(server, "/api/runs/nope/templates")[0] == 404
    assert _explain(server, "nope", band(0))[0] == 404


def test_serve_simultaneous_requests_are_independent(server):
    """8 different images at once, on every kind (guided backprop hooks the CNN): the same answers as one by one."""
    jobs = [(run, k, shift) for run in ("cnn", "mlp") for k in range(3) for shift in (0, 8)][:8] + [
        ("softmax", k, 0) for k in range(3)]

    def body(k, shift):
        a = np.zeros((64, 64), np.uint8)
        a[2 * k * 8 : (2 * k + 3) * 8, shift:] = 255
        return png(a)

    def call(job):
        run, k, shift = job
        d = _explain(server, run, body(k, shift))[1]
        return d["probabilities"], [m["src"] for m in d["maps"]], [u["unit"] for u in d.get("units", [])]

    sequential = [call(j) for j in jobs]
    for _ in range(2):
        with ThreadPoolExecutor(8) as pool:
            parallel = list(pool.map(call, jobs))
        assert parallel == sequential


def test_runs_list_the_number_of_hidden_units_to_browse(server):
    status, body = server.raw("GET", "/api/runs")
    runs = {r["name"]: r for r in json.loads(body)["runs"]}
    assert runs["mlp"]["n_units"] > 0 and runs["softmax"]["n_units"] == 0
    last = runs["mlp"]["n_units"] - 1
    assert server.raw("GET", f"/api/runs/mlp/units/{last}")[0] == 200
    assert server.raw("GET", f"/api/runs/mlp/units/{last + 1}")[0] == 404
