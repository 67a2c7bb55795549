"""Sizes a run folder declares, checked before they are allocated (issue 11, item 3 and its low classes): a weights,
state or snapshot file larger than its model allows (sparse, 4 GiB), a run.json model spec past the caps, tensors of
the wrong kind, run.json fields of the wrong type or nested 100,000 deep, a run without standardization, fit() into
a user's folder, and what each epoch rewrites of run.json.

The allocation cases run in a child process under a 1 GiB address-space limit that reports its own peak (VmHWM).
"""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from limited_child import call, run_limited
from safetensors.torch import load_file, save_file
from tiny import make_splits

import nnsee.train.run as run_module
from nnsee.errors import RunError
from nnsee.models import build_model
from nnsee.train import TrainConfig, fit
from nnsee.train.checkpoint import save_state
from nnsee.train.run import load_run, save_run, save_snapshot

GIB4 = 4 << 30


def _make_run(folder: Path, name: str = "mlp", **options: object) -> Path:
    torch.manual_seed(0)
    model = build_model(name, (1, 8, 8), 3, **options)
    save_run(folder, model, {"class_names": ["a", "b", "c"], "epoch": 1, "standardization": {"mode": "image"}},
             {"epoch": 1, "model": model.state_dict()})
    save_snapshot(folder, 1, model)
    return folder


def _edit(run: Path, **changes: object) -> None:
    meta = json.loads((run / "run.json").read_text())
    for key, value in changes.items():
        if value is ...:
            meta.pop(key, None)
        else:
            meta[key] = value
    (run / "run.json").write_text(json.dumps(meta))


def _with_big_tensor(file: Path) -> None:
    """``file`` (safetensors) with one more tensor of 2^30 float32 declared, its 4 GiB of data left sparse: the file's
    size is what its header declares."""
    raw = file.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + n])
    data = raw[8 + n :]
    header["big"] = {"dtype": "F32", "shape": [1 << 30], "data_offsets": [len(data), len(data) + GIB4]}
    text = json.dumps(header).encode()
    with open(file, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + data)
        f.truncate(8 + len(text) + len(data) + GIB4)


THEN = {"model": [], "state": [("state", [])], "snapshot": [("snapshot_state", [1])]}


def test_sizes_a_run_folder_declares_are_refused_before_they_are_allocated(tmp_path: Path) -> None:
    template = _make_run(tmp_path / "template")
    cnn = _make_run(tmp_path / "cnn-template", "cnn", channels=[2], kernel=3)
    cases: list[tuple[Path, str, str]] = []

    def case(name: str, what: str, says: str, source: Path = template) -> Path:
        run = tmp_path / "runs" / name
        shutil.copytree(source, run)
        cases.append((run, what, says))
        return run

    _with_big_tensor(case("weights-4GiB", "model", "more than the") / "model.safetensors")
    _with_big_tensor(case("state-4GiB", "state", "more than the") / "state.safetensors")
    _with_big_tensor(case("snapshot-4GiB", "snapshot", "more than the") / "snapshots" / "epoch-0001.safetensors")
    legacy = case("state-pt-4GiB", "state", "more than the")
    (legacy / "state.safetensors").unlink()
    with open(legacy / "state.pt", "wb") as f:  # a zip's first bytes, then 4 GiB of holes
        f.write(b"PK\x03\x04")
        f.truncate(GIB4)
    spec = json.loads((template / "run.json").read_text())["model"]
    _edit(case("hidden-2M", "model", "from 1 to 65,536, got 2000000"), model={**spec, "hidden": [2_000_000]})
    _edit(case("hidden-3x65536", "model", "more than the 50,000,000"), model={**spec, "hidden": [65536] * 3})
    _edit(case("classes-1e12", "model", "from 2 to 2,000"), model={**spec, "n_classes": 10 ** 12})
    cnn_spec = json.loads((cnn / "run.json").read_text())["model"]
    _edit(case("kernel-10001", "model", "from 1 to 8, got 10001", cnn), model={**cnn_spec, "kernel": 10001})
    _edit(case("channels-1024x1024", "model", "more than the 50,000,000", cnn),
          model={**cnn_spec, "input_shape": [3, 4096, 4096], "channels": [1024]})

    results, peak_kb = run_limited([call("nnsee.train.run:load_run", str(run), then=THEN[what])
                                     for run, what, _ in cases])
    for (run, _, says), (seconds, outcome) in zip(cases, results, strict=True):
        assert outcome.startswith("REFUSED ") and says in outcome and str(run) in outcome, (run.name, outcome)
        assert "\n" not in outcome and seconds < 2, (run.name, seconds)
    assert peak_kb < 600_000, peak_kb


@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.bool, torch.uint8])
def test_integer_or_boolean_tensors_where_weights_are_floats_are_refused_naming_the_tensor(
        tmp_path: Path, dtype: torch.dtype) -> None:
    run = _make_run(tmp_path / "run")
    for file in (run / "model.safetensors", run / "snapshots" / "epoch-0001.safetensors"):
        good = file.read_bytes()
        with open(file, "rb") as f:
            metadata = json.loads(f.read(int.from_bytes(f.read(8), "little")))["__metadata__"]
        tensors = load_file(file)
        tensors["fc1.weight"] = tensors["fc1.weight"].to(dtype)
        save_file(tensors, file, metadata=metadata)
        with pytest.raises(RunError, match=r"'fc1.weight' is stored as (I64|I32|BOOL|U8), where the model has "
                                           "floating point values") as info:
            load_run(run) if file.name == "model.safetensors" else load_run(run).snapshot_state(1)
        assert str(file) in str(info.value) and "\n" not in str(info.value)
        file.write_bytes(good)
    model = load_run(run).model
    wrong = {k: v.to(dtype) for k, v in model.state_dict().items()}
    save_state(run / "state.safetensors", {"epoch": 1, "model": wrong})
    with pytest.raises(RunError, match=r"state.safetensors \(model\) do not fit the architecture: 'fc1.weight' is "):
        load_run(run).state()


def test_a_users_integer_buffer_is_still_loaded(tmp_path: Path) -> None:
    """Where the model itself has integer values (BatchNorm's num_batches_tracked), integers are what is expected."""
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.BatchNorm1d(4), torch.nn.Linear(4, 2))
    save_run(tmp_path / "run", model, {"class_names": ["a", "b"], "model": None})
    fresh = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.BatchNorm1d(4), torch.nn.Linear(4, 2))
    assert load_run(tmp_path / "run", model=fresh).model[1].num_batches_tracked.dtype == torch.int64


DEEP_LIST = "[" * 100_000 + "]" * 100_000
BAD_FIELDS = {  # field -> (value, what the one line says)
    "class_names": (5, "'class_names' must be a list of 1 to 2,000 strings"),
    "input_shape": ([[[1]]], "'input_shape' must be three positive integers"),
    "history": (5, "'history' must be a JSON object, not int"),
    "config": ([1], "'config' must be a JSON object, not list"),
    "epoch": ("x", "'epoch' must be an integer of 0 or more"),
    "standardization": ("abc", "'standardization' must be a JSON object, not str"),
    "weight_shapes": ({"fc1.weight": "abc"}, "'weight_shapes.fc1.weight' must be a list of sizes"),
    "metrics": ({"test": {"confusion_matrix": [[1, 2]]}}, "'metrics.test.confusion_matrix' must be 3 rows of 3"),
    "save_id": (7, "'save_id' must be a string"),
}


@pytest.mark.parametrize("field", list(BAD_FIELDS))
def test_run_json_fields_of_the_wrong_type_are_one_line_naming_the_field(tmp_path: Path, field: str) -> None:
    run = _make_run(tmp_path / "run")
    value, says = BAD_FIELDS[field]
    _edit(run, **{field: value})
    with pytest.raises(RunError, match=f"the field {says}".replace("(", r"\(").replace("[", r"\[")) as info:
        load_run(run)
    assert str(run / "run.json") in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize(("where", "says"), [
    ("config.lr", "'config.lr' cannot be 'abc'"),
    ("history.train_loss", "'history.train_loss' must be a list of at most 1,000,000 numbers"),
    ("model.hidden", "hidden layer size must be an integer or a list of 1 to 16 integers, got 'abc'"),
    ("model.n_classes", "the number of classes must be an integer from 2 to 2,000, got 'abc'"),
    ("standardization.mode", "'standardization' has mode 'abc'"),
])
def test_nested_fields_of_the_wrong_type_are_one_line(tmp_path: Path, where: str, says: str) -> None:
    run = _make_run(tmp_path / "run")
    meta = json.loads((run / "run.json").read_text())
    top, key = where.split(".")
    meta[top] = {**(meta.get(top) or {}), key: "abc"}
    (run / "run.json").write_text(json.dumps(meta))
    with pytest.raises(RunError, match=says) as info:
        load_run(run)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("text", [
    DEEP_LIST, '{"a":' * 100_000 + "1" + "}" * 100_000, "[" * 40 + "]" * 40, '{"a":' * 40 + "1" + "}" * 40])
def test_absurdly_nested_run_json_is_refused_at_once(tmp_path: Path, text: str) -> None:
    run = _make_run(tmp_path / "run")
    raw = (run / "run.json").read_text().rstrip().rstrip("}")
    (run / "run.json").write_text(raw + ', "extra": ' + text + "}")
    with pytest.raises(RunError, match="nest") as info:
        load_run(run)
    assert "\n" not in str(info.value)
    with pytest.raises(RunError, match="nests"):  # nor can such meta be saved: it could not be read back
        save_run(tmp_path / "other", load_run(_make_run(tmp_path / "ok")).model,
                 {"class_names": ["a", "b", "c"], "extra": json.loads("[" * 40 + "]" * 40)})


@pytest.mark.parametrize("absent", [..., None])
def test_a_run_without_standardization_uses_the_images_as_they_are(tmp_path: Path, absent: object) -> None:
    """No standardization stored: the model is fed the raw [0, 1] pixels, as a run trained with --standardize none
    was; explain then works (it crashed) and draws what the raw-pixel run draws."""
    from PIL import Image

    from nnsee.report.explain import explain_files

    bare, none = _make_run(tmp_path / "bare"), tmp_path / "none"
    shutil.copytree(bare, none)
    _edit(bare, standardization=absent)
    _edit(none, standardization={"mode": "none"})
    image = np.random.default_rng(0).uniform(size=(1, 8, 8)).astype(np.float32)
    assert np.array_equal(load_run(bare).standardize(image), image)
    Image.fromarray((image[0] * 255).astype(np.uint8)).save(tmp_path / "x.png")
    got = explain_files(load_run(bare), [tmp_path / "x.png"], tmp_path / "out-bare")
    want = explain_files(load_run(none), [tmp_path / "x.png"], tmp_path / "out-none")
    assert got[0]["classes"] == want[0]["classes"]


def test_fit_refuses_a_users_folder_like_nnsee_train(tmp_path: Path) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    (out / "run.json").write_text('{"mine": true}')
    with pytest.raises(RunError) as info:
        fit(build_model("softmax", (1, 4, 4), 3), make_splits(), TrainConfig(epochs=1), out, progress=False)
    with pytest.raises(RunError) as cli_message:
        run_module.out_folder_state(out)
    assert str(info.value) == str(cli_message.value) == f"{out} is not an nnsee run folder and is not empty: choose " \
                                                        "another --out"
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt", "run.json"]
    assert (out / "run.json").read_text() == '{"mine": true}'


def test_each_epoch_rewrites_only_scalars_and_the_final_write_alone_holds_the_matrices(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """run.json is rewritten every epoch: what grows is 7 numbers an epoch; the confusion matrices (K x K) come only
    with the final scores."""
    writes: list[str] = []
    real = run_module.atomic_write_text

    def record(path: Path, text: str, *args: object) -> Path:
        if Path(path).name == "run.json":
            writes.append(text)
        return real(path, text, *args)

    monkeypatch.setattr(run_module, "atomic_write_text", record)
    fit(build_model("softmax", (1, 4, 4), 3), make_splits(), TrainConfig(epochs=12, batch_size=16), tmp_path / "r",
        progress=False)
    assert len(writes) == 1 + 12 + 1  # before training, each epoch, the final scores
    assert all("confusion_matrix" not in text for text in writes[:-1]) and "confusion_matrix" in writes[-1]
    growth = [len(b) - len(a) for a, b in zip(writes[1:-2], writes[2:-1], strict=True)]
    assert max(growth) <= 7 * 25, growth  # 7 numbers, each at most 24 characters and a comma


def test_a_run_json_too_large_to_read_back_is_never_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Per-pixel statistics of 3 x 1,024 x 1,024 images take 33.5 MB of base64 in every run.json write; past the
    reader's cap the save is refused before anything is written, naming the field."""
    from nnsee.data.standardize import Standardizer

    images = np.random.default_rng(0).uniform(size=(2, 3, 1024, 1024)).astype(np.float32)
    stats = Standardizer("pixel").fit(images).to_dict()
    monkeypatch.setattr(run_module, "MAX_RUN_JSON_BYTES", 32 << 20)
    model = torch.nn.Linear(2, 2)
    with pytest.raises(RunError, match=r"would be [\d,]+ bytes \('standardization' alone [\d,]+\), more than the "
                                       "33,554,432 nnsee reads back"):
        save_run(tmp_path / "run", model, {"class_names": ["a", "b"], "model": None, "standardization": stats})
    assert not (tmp_path / "run" / "run.json").exists() and not (tmp_path / "run" / "model.safetensors").exists()
