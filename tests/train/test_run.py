"""The run folder: save_run/load_run round trips, versions, consistency after interrupted saves, snapshots."""

from __future__ import annotations

import json
import sys
import types
import warnings
from pathlib import Path

import pytest
import torch
from torch import nn

import nnsee
import nnsee.train.run as run_module
from nnsee.errors import RunError
from nnsee.models import build_model
from nnsee.train.run import (
    RUN_FORMAT_VERSION,
    Run,
    is_run_folder,
    list_snapshots,
    load_run,
    load_snapshot,
    read_meta,
    save_run,
    save_snapshot,
)

CLASSES = ["zero", "one", 'three "quoted" <b>']


def tiny(hidden: int = 2, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return build_model("mlp", (1, 2, 2), 3, hidden=[hidden])


def meta(**extra: object) -> dict:
    return {
        "model": None,  # replaced below when the model has a spec
        "data": {"spec": "digits", "size": 8},
        "standardization": {"mode": "image"},
        "class_names": CLASSES,
        "input_shape": [1, 2, 2],
        "config": {"epochs": 3, "lr": 0.1},
        "history": {"train_loss": [1.5, 0.75], "val_accuracy": [0.5, 0.625]},
        "metrics": {"test": {"accuracy": 0.75}},
        "epoch": 2,
        **extra,
    }


def saved(tmp_path: Path, model: nn.Module | None = None, **extra: object) -> tuple[Path, nn.Module, dict]:
    model = model if model is not None else tiny()
    m = meta(**extra)
    m["model"] = model.nnsee_spec
    save_run(tmp_path / "run", model, m)
    return tmp_path / "run", model, m


def test_round_trip_bitwise_weights_and_equal_meta(tmp_path: Path) -> None:
    path, model, m = saved(tmp_path)
    run = load_run(path)
    assert isinstance(run, Run) and run.path == path and not run.model.training
    for key, value in model.state_dict().items():
        assert torch.equal(run.model.state_dict()[key], value)
    assert {k: run.meta[k] for k in m} == m
    assert run.meta["nnsee_format_version"] == RUN_FORMAT_VERSION and run.meta["nnsee_version"] == nnsee.__version__
    assert run.class_names == CLASSES and run.input_shape == (1, 2, 2) and run.epoch == 2
    assert run.history == m["history"] and run.metrics == m["metrics"]
    assert run.data_spec == m["data"] and run.config == m["config"]
    assert sorted(p.name for p in path.iterdir()) == ["model.safetensors", "run.json"]
    x = torch.rand(5, 1, 2, 2)
    assert torch.equal(run.model(x), model.eval()(x))


def test_spec_and_input_shape_default_from_the_model(tmp_path: Path) -> None:
    m = meta()
    del m["model"], m["input_shape"]
    save_run(tmp_path, tiny(), m)
    run = load_run(tmp_path)
    assert run.meta["model"] == tiny().nnsee_spec and run.input_shape == (1, 2, 2)


def test_run_json_is_strict_json_with_nan_as_null(tmp_path: Path) -> None:
    import numpy as np

    path, _, _ = saved(tmp_path, history={"loss": [1.0, float("nan"), float("inf")], "acc": np.array([0.5, 0.25])})
    data = json.loads((path / "run.json").read_text(), parse_constant=lambda c: pytest.fail(f"non-JSON {c}"))
    assert data["history"] == {"loss": [1.0, None, None], "acc": [0.5, 0.25]}


def test_meta_that_is_not_json_is_refused_before_writing(tmp_path: Path) -> None:
    with pytest.raises(RunError, match=r"meta.config.fn"):
        save_run(tmp_path / "run", tiny(), meta(config={"fn": object()}))
    assert not (tmp_path / "run" / "run.json").exists()
    with pytest.raises(RunError, match="class_names"):
        save_run(tmp_path / "run", tiny(), {"class_names": "abc"})


def test_custom_model_needs_the_module(tmp_path: Path) -> None:
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
    save_run(tmp_path, model, meta())
    with pytest.raises(RunError, match="pass the module"):
        load_run(tmp_path)
    run = load_run(tmp_path, model=nn.Sequential(nn.Flatten(), nn.Linear(4, 3)))
    assert torch.equal(run.model[1].weight, model[1].weight)
    with pytest.raises(RunError, match=r"'1.weight' has shape \(3, 4\), the architecture expects \(5, 4\)"):
        load_run(tmp_path, model=nn.Sequential(nn.Flatten(), nn.Linear(4, 5)))


def test_state_round_trip_and_missing_state(tmp_path: Path) -> None:
    path, model, _ = saved(tmp_path)
    with pytest.raises(RunError, match="no resume state"):
        load_run(path).state()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.rand(2, 1, 2, 2)).sum().backward()
    opt.step()
    state = {"epoch": 2, "model": model.state_dict(), "optimizer": opt.state_dict(), "torch_rng": torch.get_rng_state()}
    save_run(path, model, {**meta(), "model": model.nnsee_spec}, state)
    loaded = load_run(path).state()
    assert loaded["epoch"] == 2 and torch.equal(loaded["torch_rng"], state["torch_rng"])
    assert torch.equal(
        loaded["optimizer"]["state"][0]["momentum_buffer"], opt.state_dict()["state"][0]["momentum_buffer"]
    )
    assert sorted(p.name for p in path.iterdir()) == ["model.safetensors", "run.json", "state.safetensors"]
    save_run(path, model, {**meta(), "model": model.nnsee_spec})  # no state now: the old one must not linger
    assert not (path / "state.safetensors").exists()


def test_standardizer_is_built_lazily(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    class FakeStandardizer:
        @classmethod
        def from_dict(cls, d: dict) -> tuple[str, dict]:
            calls.append(d)
            return ("standardizer", d)

    module = types.ModuleType("nnsee.data.standardize")
    module.Standardizer = FakeStandardizer
    monkeypatch.setitem(sys.modules, "nnsee.data.standardize", module)
    path, _, _ = saved(tmp_path)
    run = load_run(path)
    assert calls == []
    assert run.standardizer == ("standardizer", {"mode": "image"}) and run.standardizer is run.standardizer
    assert len(calls) == 1
    run.meta["standardization"] = None
    assert Run(path, run.model, run.meta).standardizer is None


# ------------------------------------------------------------------------------------- bad run folders


def edit_run_json(path: Path, **changes: object) -> None:
    data = json.loads((path / "run.json").read_text())
    for key, value in changes.items():
        if value is ...:
            del data[key]
        else:
            data[key] = value
    (path / "run.json").write_text(json.dumps(data))


def test_missing_folder_and_missing_run_json(tmp_path: Path) -> None:
    with pytest.raises(RunError, match="no run folder"):
        load_run(tmp_path / "nope")
    with pytest.raises(RunError, match=r"run\.json does not exist"):
        load_run(tmp_path)
    assert not is_run_folder(tmp_path) and not is_run_folder(tmp_path / "nope")


@pytest.mark.parametrize("content", ["{", "", "[1, 2]", "\xff"])
def test_corrupt_run_json_names_the_file(tmp_path: Path, content: str) -> None:
    path, _, _ = saved(tmp_path)
    (path / "run.json").write_text(content, encoding="latin-1")
    with pytest.raises(RunError) as info:
        load_run(path)
    assert str(path / "run.json") in str(info.value)
    assert not is_run_folder(path)


@pytest.mark.parametrize(
    ("version", "message"),
    [
        (..., "not an nnsee run"),
        ("1", "not an nnsee run"),
        (RUN_FORMAT_VERSION + 1, r"newer nnsee.*upgrade nnsee"),
        (0, r"old run format 0.*no longer reads"),
    ],
)
def test_versions(tmp_path: Path, version: object, message: str) -> None:
    path, _, _ = saved(tmp_path)
    edit_run_json(path, nnsee_format_version=version, nnsee_version="9.0.0")
    with pytest.raises(RunError, match=message) as info:
        load_run(path)
    assert str(path / "run.json") in str(info.value)
    assert is_run_folder(path) == (version is not ...)
    with pytest.raises(RunError, match=message):
        read_meta(path)


def test_spec_that_does_not_fit_the_weights_names_the_key(tmp_path: Path) -> None:
    path, model, _ = saved(tmp_path)
    edit_run_json(path, model={**model.nnsee_spec, "hidden": [3]})
    with pytest.raises(RunError, match=r"'fc1.weight' has shape \(2, 4\), the architecture expects \(3, 4\)"):
        load_run(path)
    edit_run_json(path, model={**model.nnsee_spec, "name": "no-such-model"})
    with pytest.raises(RunError, match="cannot rebuild the model"):
        load_run(path)


def test_class_names_that_disagree_with_the_weights(tmp_path: Path) -> None:
    path, _, _ = saved(tmp_path)
    edit_run_json(path, class_names=["a", "b", "c"])
    with pytest.raises(RunError, match="inconsistent"):
        load_run(path)


def test_nan_weights_refused(tmp_path: Path) -> None:
    path, model, _ = saved(tmp_path)
    from safetensors.torch import load_file, save_file

    from nnsee.train.checkpoint import load_weights

    _, metadata = load_weights(path / "model.safetensors")
    weights = load_file(path / "model.safetensors")
    weights["out.weight"][0, 0] = float("nan")
    save_file(weights, path / "model.safetensors", metadata=metadata)
    with pytest.raises(RunError, match=r"non-finite.*'out.weight'"):
        load_run(path)


# --------------------------------------------------------------------------- interrupted and repeated saves


def test_crash_between_files_same_model_leaves_a_loadable_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path, model, m = saved(tmp_path)
    with torch.no_grad():
        model.out.bias.add_(1.0)

    def crash(*a: object, **k: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(run_module, "atomic_write_text", crash)  # weights written, run.json not
    with pytest.raises(KeyboardInterrupt):
        save_run(path, model, {**m, "epoch": 3})
    monkeypatch.undo()
    with pytest.warns(RuntimeWarning, match="different save"):
        run = load_run(path)
    assert run.epoch == 2 and torch.equal(run.model.out.bias, model.out.bias)


def test_crash_while_saving_a_different_model_never_mixes_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path, _, m = saved(tmp_path)
    bigger = tiny(hidden=5)

    def crash(*a: object, **k: object) -> None:
        raise OSError("killed")

    monkeypatch.setattr(run_module, "atomic_write_text", crash)
    with pytest.raises(OSError):
        save_run(path, bigger, {**m, "model": bigger.nnsee_spec})
    monkeypatch.undo()
    with pytest.raises(RunError, match=r"run\.json does not exist.*interrupted"):
        load_run(path)
    save_run(path, bigger, {**m, "model": bigger.nnsee_spec})
    assert load_run(path).model.fc1.weight.shape == (5, 4)


def test_resave_cleans_stale_tmp_and_keeps_no_warning(tmp_path: Path) -> None:
    path, model, m = saved(tmp_path)
    (path / ".tmp-model.safetensors-0123").write_bytes(b"half a file")
    (path / "snapshots").mkdir()
    (path / "snapshots" / ".tmp-epoch-0001.safetensors-4567").write_bytes(b"half")
    save_run(path, model, m)
    assert list(path.glob("**/.tmp-*")) == []
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_run(path)


# ---------------------------------------------------------------------------------------------- snapshots


def test_snapshots(tmp_path: Path) -> None:
    path, model, _ = saved(tmp_path)
    expected = {}
    for epoch in (0, 5, 12):
        with torch.no_grad():
            model.out.bias.fill_(epoch)
        expected[epoch] = save_snapshot(path, epoch, model)
    assert expected[5] == path / "snapshots" / "epoch-0005.safetensors"
    assert list_snapshots(path) == expected
    assert torch.equal(load_snapshot(path, 5)["out.bias"], torch.full((3,), 5.0))
    with pytest.raises(RunError, match=r"no snapshot of epoch 7 \(snapshots: 0, 5, 12\)"):
        load_snapshot(path, 7)
    assert list_snapshots(tmp_path / "elsewhere") == {}


def test_snapshot_shapes_are_checked_against_the_run(tmp_path: Path) -> None:
    path, _, _ = saved(tmp_path)
    save_snapshot(path, 1, tiny(hidden=4))
    with pytest.raises(RunError, match="'fc1.weight' has shape"):
        load_snapshot(path, 1)


def test_snapshot_before_the_first_save_needs_class_names(tmp_path: Path) -> None:
    with pytest.raises(RunError, match="pass class_names"):
        save_snapshot(tmp_path, 0, tiny())
    save_snapshot(tmp_path, 0, tiny(), class_names=CLASSES)
    assert set(load_snapshot(tmp_path, 0)) == set(tiny().state_dict())


# ---------------------------------------------------------------------------------------------- the typed Run


def test_run_standardize_applies_the_runs_standardizer_or_nothing(tmp_path: Path) -> None:
    import numpy as np

    from nnsee.data.standardize import Standardizer

    path, _, _ = saved(tmp_path)
    run = load_run(path)
    images = np.arange(2 * 4, dtype=np.float64).reshape(2, 1, 2, 2) ** 2
    expected = Standardizer("image").transform(images)
    got = run.standardize(images)
    assert got.dtype == np.float32 and np.array_equal(got, expected)
    assert not np.array_equal(got, images.astype(np.float32))
    run.meta["standardization"] = None
    bare = Run(path, run.model, run.meta)
    assert np.array_equal(bare.standardize(images), images.astype(np.float32))
    assert bare.standardize(images).dtype == np.float32


def test_run_snapshot_epochs_and_state(tmp_path: Path) -> None:
    path, model, _ = saved(tmp_path)
    run = load_run(path)
    assert run.snapshot_epochs == []
    for epoch in (12, 0, 5):
        with torch.no_grad():
            model.out.bias.fill_(epoch)
        save_snapshot(path, epoch, model)
    assert run.snapshot_epochs == [0, 5, 12]
    state = run.snapshot_state(5)
    assert set(state) == set(model.state_dict()) and torch.equal(state["out.bias"], torch.full((3,), 5.0))
    with pytest.raises(RunError, match=r"no snapshot of epoch 7 \(snapshots: 0, 5, 12\)"):
        run.snapshot_state(7)
    save_snapshot(path, 3, tiny(hidden=4))
    with pytest.raises(RunError, match="'fc1.weight' has shape"):
        run.snapshot_state(3)


def test_a_thousand_class_run_json_stays_well_under_its_cap_and_loads(tmp_path: Path) -> None:
    """Two 1,000 x 1,000 confusion matrices: one line per top-level field keeps run.json near 6 MB (indented one
    number a line it was 26 MB, over the reader's cap, so the run could not be loaded or reported)."""
    import numpy as np

    from nnsee.data import load_data
    from nnsee.models import build_model
    from nnsee.train import TrainConfig, fit, load_run
    from nnsee.train.run import MAX_RUN_JSON_BYTES

    k = 1000
    x = np.random.default_rng(0).uniform(size=(3 * k, 4, 4)).astype(np.float32)
    np.savez(tmp_path / "many.npz", x=x, y=np.repeat(np.arange(k), 3))
    splits = load_data(str(tmp_path / "many.npz"), seed=0)
    fit(build_model("softmax", splits.shape, k), splits, TrainConfig(epochs=1, batch_size=64), tmp_path / "run",
        progress=False)
    assert (tmp_path / "run" / "run.json").stat().st_size < MAX_RUN_JSON_BYTES / 2
    run = load_run(tmp_path / "run")
    assert len(run.class_names) == k and len(run.metrics["test"]["confusion_matrix"]) == k
