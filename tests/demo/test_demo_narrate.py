"""Golden tests of the tour's paragraphs (nnsee.lessons.narrate): every number a paragraph states equals one computed
here independently, in float64 numpy from the weights in model.safetensors (not through nnsee's methods)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file

from nnsee.lessons import narrate


def _weights(out: Path, run: str) -> dict[str, np.ndarray]:
    return {k: v.astype(np.float64) for k, v in load_file(out / run / "model.safetensors").items()}


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _flat_std(entry: Any, images: np.ndarray) -> np.ndarray:
    return entry.data["run"].standardize(images).reshape(len(images), -1).astype(np.float64)


def test_hidden_unit_paragraph_matches_the_weights_and_a_direct_ablation(demo: tuple[Path, dict]) -> None:
    out, entries = demo
    e = entries["digits-mlp"]
    n = narrate.hidden_units(e.data["run"], e.data["splits"])
    w = _weights(out, "digits-mlp")
    w_out = w["out.weight"]
    j = int(np.argmax(np.sqrt((w_out**2).sum(axis=0))))
    assert n.numbers["unit"] == j
    assert n.numbers["promotes"] == int(np.argmax(w_out[:, j]))
    assert n.numbers["suppresses"] == int(np.argmin(w_out[:, j]))
    x = _flat_std(e, e.data["splits"].val.images)
    h = np.tanh(x @ w["fc1.weight"].T + w["fc1.bias"])
    p = _softmax(h @ w_out.T + w["out.bias"])
    h[:, j] = 0.0
    dp = (_softmax(h @ w_out.T + w["out.bias"]) - p).mean(axis=0)
    k = n.numbers["promotes"]
    assert n.numbers["dp_promoted"] == pytest.approx(dp[k], abs=1e-6)
    assert n.numbers["most_changed"] == int(np.argmax(np.abs(dp)))
    assert n.numbers["n_images"] == len(x)
    assert f"Unit {j} " in n.text and f"p({k}) by {dp[k]:+.2g}" in n.text


def test_templates_paragraph_correlations(demo: tuple[Path, dict]) -> None:
    out, entries = demo
    e = entries["digits-softmax"]
    n = narrate.templates(e.data["run"], e.data["splits"])
    w = _weights(out, "digits-softmax")["out.weight"]
    train = e.data["splits"].train
    x, y = _flat_std(e, train.images), np.asarray(train.labels)
    r = [np.corrcoef(w[k], x[y == k].mean(axis=0))[0, 1] for k in range(len(w))]
    assert n.numbers["correlations"] == pytest.approx(r, abs=1e-6)
    assert n.numbers["best"] == int(np.argmax(r)) and n.numbers["worst"] == int(np.argmin(r))
    assert f"r = {r[n.numbers['worst']]:.2f}" in n.text


def test_dot_product_paragraph_splits_the_score(demo: tuple[Path, dict]) -> None:
    out, entries = demo
    e = entries["digits-softmax"]
    n = narrate.dot_product(e.data["run"], e.data["splits"])
    w = _weights(out, "digits-softmax")
    x = _flat_std(e, e.data["splits"].test.images)
    z = x @ w["out.weight"].T + w["out.bias"]
    p, labels = _softmax(z), np.asarray(e.data["splits"].test.labels)
    pred = p.argmax(axis=1)
    wrong = [i for i in range(len(x)) if pred[i] != labels[i]]
    assert wrong, "the test-size softmax makes mistakes"
    i = max(wrong, key=lambda i: p[i, pred[i]])
    k = int(pred[i])
    c = x[i] * w["out.weight"][k]
    assert (n.numbers["index"], n.numbers["predicted"], n.numbers["mistakes"]) == (i, k, len(wrong))
    assert n.numbers["positive"] == pytest.approx(c[c > 0].sum(), abs=1e-4)
    assert n.numbers["negative"] == pytest.approx(c[c < 0].sum(), abs=1e-4)
    assert n.numbers["positive"] + n.numbers["negative"] + n.numbers["bias"] == pytest.approx(z[i, k], abs=1e-4)


def test_study_paragraphs_state_the_studies_numbers(demo: tuple[Path, dict]) -> None:
    out, entries = demo
    study = json.loads((out / "overfit-study" / "runs" / "study.json").read_text())
    rows = {(r["per_class"], r["l2"]): r for r in study["runs"]}
    small, strong = min(pc for pc, _ in rows), max(l2 for _, l2 in rows)
    n = narrate.overfitting(entries["overfit-study"].data["study"])
    plain = rows[(small, 0.0)]
    assert n.numbers["min_val_loss_epoch"] == int(np.argmin(plain["history"]["val_loss"])) + 1
    assert n.numbers["hf_plain"] == pytest.approx(plain["noisiness_high_frequency_share_mean"])
    assert n.numbers["hf_l2"] == pytest.approx(rows[(small, strong)]["noisiness_high_frequency_share_mean"])
    assert f"from {n.numbers['hf_plain']:.2f} to {n.numbers['hf_l2']:.2f}" in n.text
    modes = entries["standardization-study"].data["study"]
    s = narrate.standardization(modes)
    best = max(modes.results, key=lambda r: r.test_accuracy)
    assert s.numbers["best"] == best.mode and f"{100 * best.test_accuracy:.1f}%" in s.text


def test_cnn_paragraph_occlusion_matches_a_float64_brute_force(demo: tuple[Path, dict]) -> None:
    _, entries = demo
    e = entries["digits-cnn"]
    run, splits = e.data["run"], e.data["splits"]
    n = narrate.cnn(run, splits)
    i, label, win = n.numbers["index"], n.numbers["label"], n.numbers["window"]
    x = torch.from_numpy(run.standardize(splits.test.images[[i]])).double()
    model = run.model.double().eval()
    try:
        with torch.no_grad():
            base = model(x)[0, label]
            h, w = x.shape[-2:]
            drop, count = torch.zeros(h, w, dtype=torch.float64), torch.zeros(h, w, dtype=torch.float64)
            for r in range(h - win + 1):
                copies = x.repeat(w - win + 1, 1, 1, 1)
                for c in range(w - win + 1):
                    copies[c, :, r:r + win, c:c + win] = 0.0
                scores = base - model(copies)[:, label]
                for c in range(w - win + 1):
                    drop[r:r + win, c:c + win] += scores[c]
                    count[r:r + win, c:c + win] += 1
    finally:
        run.model.float()
    heat = (drop / count).numpy()
    assert (n.numbers["row"], n.numbers["col"]) == np.unravel_index(int(np.argmax(heat)), heat.shape)
    assert n.numbers["drop"] == pytest.approx(heat.max(), rel=1e-4, abs=1e-5)


def test_attribution_paragraph_names_the_least_and_most_changed_method() -> None:
    scores = {"saliency": {"spearman": 0.8}, "grad-cam": {"spearman": -0.1}, "smoothgrad": {"spearman": math.nan},
              "integrated-gradients": {"spearman": 0.3}}
    n = narrate.attribution(scores, 4, "7")
    assert (n.numbers["least_changed"], n.numbers["most_changed"]) == ("saliency", "grad-cam")
    assert "saliency's map changed least (rank correlation 0.80" in n.text and "grad-cam's most (-0.10)" in n.text
