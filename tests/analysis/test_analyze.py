"""``analyze`` against independent references: ``evaluate.scores``, a float64 brute force that keeps every
activation, and the registry's methods called directly on all images at once."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from nnsee.analysis import analyze, load_analysis
from nnsee.data import load_data
from nnsee.errors import NnseeError
from nnsee.methods.attribution.registry import attribute
from nnsee.models.hooks import capture, eval_mode
from nnsee.train import load_run
from nnsee.train.evaluate import scores


@pytest.fixture(scope="module")
def setup(cnn_run: Path, npz: Path) -> tuple:
    run = load_run(cnn_run)
    run.model.double()  # float64: the brute force's values have no ties from rounding
    return run, load_data(str(npz), seed=0).train


def test_summary_equals_the_references(setup: tuple, tmp_path: Path) -> None:
    run, data = setup
    layers, methods = ["relu1", "conv2", "out"], ["saliency", "grad-cam"]  # "out": a flat layer (N, F)
    a = analyze(run.model, data, tmp_path / "a", standardizer=run.standardizer, layers=layers, k=5,
                methods=methods, batch_size=16, shard_size=50)
    x = run.standardize(data.images)
    with eval_mode(run.model):  # predict_logits casts no dtype: the float64 model's logits by hand, as it gives them
        logits = run.model(torch.from_numpy(x).double()).float().numpy()
    ref = scores(logits, data.labels, data.class_names)
    again = load_analysis(tmp_path / "a")
    s = again.summary
    assert s["n"] == len(data) == ref["n"] and s["accuracy"] == ref["accuracy"]
    assert s["confusion_matrix"] == ref["confusion_matrix"]
    assert s["predictions"] == logits.argmax(1).tolist() and s["labels"] == data.labels.tolist()
    e = np.exp(logits - logits.max(1, keepdims=True))
    np.testing.assert_allclose(again.probabilities(), e / e.sum(1, keepdims=True), rtol=1e-5, atol=1e-6)
    for layer in layers:  # float64 brute force over every activation kept
        with eval_mode(run.model), capture(run.model, layer) as seen:
            run.model(torch.from_numpy(x).double())
        acts = seen.output.numpy().reshape(len(data), seen.output.shape[1], -1)
        score = acts.max(axis=2)
        top = again.top(layer)
        for f in range(acts.shape[1]):
            order = np.lexsort((np.arange(len(data)), -score[:, f]))[:5]
            np.testing.assert_array_equal(top["index"][f], order)
            np.testing.assert_allclose(top["values"][f], score[order, f], rtol=1e-12)
            first = acts[order, f].argmax(axis=1)
            where = (np.stack(np.unravel_index(first, seen.output.shape[2:]), -1) if seen.output.ndim == 4
                     else np.zeros((len(first), 2)))
            np.testing.assert_array_equal(top["position"][f], where)
    labels = torch.from_numpy(data.labels)
    for method in methods:
        direct = attribute(method, run.model, torch.from_numpy(x).double(), labels).maps
        shards = again.maps(method)
        positions = np.concatenate([p for p, _ in shards])
        np.testing.assert_array_equal(positions, np.arange(len(data)))
        stored = np.concatenate([np.asarray(m) for _, m in shards])
        np.testing.assert_allclose(stored, direct.astype(np.float32), rtol=1e-6, atol=1e-6 * np.abs(direct).max())
        for c in range(3):
            (p, m), *rest = again.maps(method, c) or [(np.zeros(0), None)]
            listed = np.concatenate([p] + [q for q, _ in rest])
            np.testing.assert_array_equal(listed, np.flatnonzero(data.labels == c))
            np.testing.assert_allclose(again.class_means(method)[c], direct[data.labels == c].mean(0),
                                       rtol=1e-6, atol=1e-6 * np.abs(direct).max())
        assert again.map_of(method, 7).shape == direct.shape[1:]
    assert a.summary == s


def test_refusals_are_one_line_and_change_nothing(setup: tuple, tmp_path: Path) -> None:
    run, data = setup
    user = tmp_path / "mine"
    user.mkdir()
    (user / "notes.txt").write_text("keep me")
    with pytest.raises(NnseeError, match="not an nnsee analysis"):
        analyze(run.model, data, user, standardizer=run.standardizer)
    assert sorted(p.name for p in user.iterdir()) == ["notes.txt"]
    with pytest.raises(NnseeError, match="no analysis to resume"):
        analyze(run.model, data, tmp_path / "none", resume=True)
    done = tmp_path / "done"
    analyze(run.model, data, done, standardizer=run.standardizer, batch_size=64)
    with pytest.raises(NnseeError, match="already holds a complete analysis; pass --resume"):
        analyze(run.model, data, done, standardizer=run.standardizer)


def test_a_checkpoint_of_another_analysis_is_refused_on_resume(setup: tuple, tmp_path: Path) -> None:
    run, data = setup
    for name, k in (("a", 3), ("b", 4)):
        analyze(run.model, data, tmp_path / name, standardizer=run.standardizer, layers=["relu1"], k=k,
                batch_size=64, shard_size=128)
    (tmp_path / "b" / "summary.json").unlink()
    theirs = tmp_path / "a" / "ranks" / "rank-0" / "checkpoint.npz"
    (tmp_path / "b" / "ranks" / "rank-0" / "checkpoint.npz").write_bytes(theirs.read_bytes())
    with pytest.raises(NnseeError, match=r"cannot resume from .*checkpoint.npz: options.k 3 -> 4 changed"):
        analyze(run.model, data, tmp_path / "b", standardizer=run.standardizer, layers=["relu1"], k=4, resume=True)
    assert not (tmp_path / "b" / "summary.json").exists()


def test_method_options_reach_the_method_and_are_checked(setup: tuple, tmp_path: Path) -> None:
    run, data = setup
    options = {"integrated-gradients": {"steps": "4", "baseline": "0.5"}}
    a = analyze(run.model, data, tmp_path / "a", standardizer=run.standardizer, methods=["integrated-gradients"],
                batch_size=64, method_options=options)
    x = torch.from_numpy(run.standardize(data.images)).double()
    direct = attribute("integrated-gradients", run.model, x, torch.from_numpy(data.labels), steps=4,
                       baseline=0.5).maps
    stored = np.concatenate([np.asarray(m) for _, m in a.maps("integrated-gradients")])
    np.testing.assert_allclose(stored, direct.astype(np.float32), rtol=1e-6, atol=1e-6 * np.abs(direct).max())
    assert a.summary["options"]["method_options"] == {"integrated-gradients": {"baseline": 0.5, "steps": 4}}
    for bad, said in (({"saliency": {"steps": 3}}, "not among the methods"),
                      ({"integrated-gradients": {"window": 3}}, "has no option window"),
                      ({"integrated-gradients": {"steps": 0}}, "takes a whole number from 1")):
        with pytest.raises(NnseeError, match=said):
            analyze(run.model, data, tmp_path / "b", methods=["integrated-gradients"], method_options=bad)
    assert not (tmp_path / "b").exists()
    (a.path / "summary.json").unlink()
    with pytest.raises(NnseeError, match="options.method_options.integrated-gradients.steps 4 -> 8 changed"):
        analyze(run.model, data, a.path, standardizer=run.standardizer, methods=["integrated-gradients"],
                resume=True, method_options={"integrated-gradients": {"steps": 8, "baseline": 0.5}})
