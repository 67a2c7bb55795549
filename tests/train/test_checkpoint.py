"""Weights (safetensors) and resume state (torch.save): round trips, and refusal of every bad file."""

from __future__ import annotations

import json
import os
import pickle
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from nnsee.errors import RunError
from nnsee.models import build_model
from nnsee.train.checkpoint import (
    WEIGHTS_FORMAT_VERSION,
    load_state,
    load_weights,
    save_state,
    save_weights,
)

META = {"class_names": ["cat", "dog", "<b>bird</b>"]}


def craft(path: Path, header: dict, data: bytes = b"", header_len: int | None = None) -> Path:
    """A safetensors file by hand: 8-byte little-endian header length, JSON header, data."""
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw) if header_len is None else header_len) + raw + data)
    return path


def good_header(**extra: object) -> dict:
    return {"__metadata__": {"nnsee_format_version": "1", "class_names": '["a"]', "model": "custom"}, **extra}


# ------------------------------------------------------------------------------------------------ weights


def test_weights_round_trip_bitwise_with_metadata(tmp_path: Path) -> None:
    model = build_model("mlp", (1, 2, 2), 3, hidden=[2])
    save_weights(tmp_path / "w.safetensors", model, META)
    weights, meta = load_weights(
        tmp_path / "w.safetensors", expect_shapes={k: v.shape for k, v in model.state_dict().items()}
    )
    for key, value in model.state_dict().items():
        assert torch.equal(weights[key], value) and weights[key].dtype == value.dtype
    assert meta["nnsee_format_version"] == str(WEIGHTS_FORMAT_VERSION)
    assert json.loads(meta["class_names"]) == META["class_names"]
    assert json.loads(meta["model"]) == model.nnsee_spec


def test_custom_module_and_tied_weights(tmp_path: Path) -> None:
    model = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4))
    model[1].weight = model[0].weight  # tied: safetensors alone would refuse shared memory
    sd = {k: v for k, v in model.state_dict().items()}
    save_weights(tmp_path / "w.safetensors", sd, {"class_names": ["a", "b"], "epoch": 3})
    weights, meta = load_weights(tmp_path / "w.safetensors")
    assert meta["model"] == "custom" and meta["epoch"] == "3"
    assert torch.equal(weights["0.weight"], weights["1.weight"])


def test_save_refuses_nan_weights_and_writes_nothing(tmp_path: Path) -> None:
    model = nn.Linear(4, 3)
    with torch.no_grad():
        model.bias[1] = float("nan")
    with pytest.raises(RunError, match=r"non-finite.*'bias'"):
        save_weights(tmp_path / "w.safetensors", model, META)
    assert list(tmp_path.iterdir()) == []


def test_save_needs_class_names(tmp_path: Path) -> None:
    with pytest.raises(RunError, match="class_names"):
        save_weights(tmp_path / "w.safetensors", nn.Linear(2, 2), {})


def _pickle_bytes() -> bytes:
    return pickle.dumps({"w": [1.0, 2.0]}, protocol=2)


def _torch_zip_bytes() -> bytes:
    import io

    buf = io.BytesIO()
    torch.save({"w": torch.ones(2)}, buf)
    return buf.getvalue()


MALFORMED = {
    "empty": lambda p: p.write_bytes(b""),
    "shorter than the length field": lambda p: p.write_bytes(b"\x10\x00\x00"),
    "truncated data": lambda p: craft(
        p, good_header(w={"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}), b"\0" * 9
    ),
    "truncated header": lambda p: p.write_bytes(struct.pack("<Q", 200) + b'{"__metadata__": {'),
    "huge header length": lambda p: craft(p, good_header(), header_len=2**63),
    "zero header length": lambda p: craft(p, good_header(), header_len=0),
    "header not JSON": lambda p: p.write_bytes(struct.pack("<Q", 8) + b"\xff\xfenot{}"),
    "header not an object": lambda p: p.write_bytes(struct.pack("<Q", 2) + b"[]"),
    "overlapping offsets": lambda p: craft(
        p,
        good_header(
            a={"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
            b={"dtype": "F32", "shape": [2], "data_offsets": [4, 12]},
        ),
        b"\0" * 12,
    ),
    "gap between tensors": lambda p: craft(
        p,
        good_header(
            a={"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
            b={"dtype": "F32", "shape": [1], "data_offsets": [8, 12]},
        ),
        b"\0" * 12,
    ),
    "shape overflow": lambda p: craft(
        p, good_header(w={"dtype": "F32", "shape": [2**62, 2**62, 16], "data_offsets": [0, 16]}), b"\0" * 16
    ),
    "negative dim": lambda p: craft(
        p, good_header(w={"dtype": "F32", "shape": [-1, -4], "data_offsets": [0, 16]}), b"\0" * 16
    ),
    "offsets past the end": lambda p: craft(
        p, good_header(w={"dtype": "U8", "shape": [64], "data_offsets": [0, 64]}), b"\0" * 16
    ),
    "reversed offsets": lambda p: craft(
        p, good_header(w={"dtype": "U8", "shape": [0], "data_offsets": [8, 0]}), b"\0" * 8
    ),
    "extra trailing bytes": lambda p: craft(
        p, good_header(w={"dtype": "U8", "shape": [4], "data_offsets": [0, 4]}), b"\0" * 9
    ),
    "unknown dtype": lambda p: craft(
        p, good_header(w={"dtype": "Q7", "shape": [4], "data_offsets": [0, 4]}), b"\0" * 4
    ),
    "metadata not strings": lambda p: craft(p, {"__metadata__": {"nnsee_format_version": 1}}),
    "entry not an object": lambda p: craft(p, good_header(w=[1, 2])),
    "pickle renamed .safetensors": lambda p: p.write_bytes(_pickle_bytes()),
    "torch.save file renamed .safetensors": lambda p: p.write_bytes(_torch_zip_bytes()),
    "text file": lambda p: p.write_text("hello, I am not a tensor file at all\n"),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_safetensors_gives_run_error_with_path(tmp_path: Path, case: str) -> None:
    path = tmp_path / "model.safetensors"
    MALFORMED[case](path)
    with pytest.raises(RunError) as info:
        load_weights(path)
    assert str(path) in str(info.value)


def test_renamed_pickle_gets_a_hint(tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    path.write_bytes(_torch_zip_bytes())
    with pytest.raises(RunError, match="renamed"):
        load_weights(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(RunError, match="does not exist"):
        load_weights(tmp_path / "nope.safetensors")


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        (None, "nnsee_format_version"),
        ({"class_names": '["a","b"]'}, "nnsee_format_version"),
        ({"nnsee_format_version": "1"}, "class_names"),
        ({"nnsee_format_version": "1", "class_names": "a,b"}, "class_names"),
        ({"nnsee_format_version": "1", "class_names": '["a"]', "model": "{oops"}, "model"),
        ({"nnsee_format_version": "two", "class_names": '["a"]'}, "unreadable"),
        ({"nnsee_format_version": str(WEIGHTS_FORMAT_VERSION + 1), "class_names": '["a"]'}, r"newer nnsee.*upgrade"),
        ({"nnsee_format_version": "0", "class_names": '["a"]'}, "old format"),
    ],
)
def test_bad_metadata_refused(tmp_path: Path, metadata: dict | None, message: str) -> None:
    path = tmp_path / "w.safetensors"
    save_file({"w": torch.ones(2)}, path, metadata=metadata)
    with pytest.raises(RunError, match=message) as info:
        load_weights(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_weights_refused_naming_the_tensor(tmp_path: Path, bad: float) -> None:
    path = tmp_path / "w.safetensors"
    w = torch.zeros(3, dtype=torch.float16)
    w[2] = bad
    save_file(
        {"fine": torch.ones(2), "fc1.weight": w}, path, metadata={"nnsee_format_version": "1", "class_names": "[]"}
    )
    with pytest.raises(RunError, match=r"non-finite.*'fc1.weight'") as info:
        load_weights(path)
    assert "'fine'" not in str(info.value) and str(path) in str(info.value)


def test_shape_mismatch_names_key_expected_and_actual(tmp_path: Path) -> None:
    path = tmp_path / "w.safetensors"
    save_weights(path, build_model("mlp", (1, 2, 2), 3, hidden=[5]), META)
    expect = {k: tuple(v.shape) for k, v in build_model("mlp", (1, 2, 2), 3, hidden=[2]).state_dict().items()}
    with pytest.raises(RunError) as info:
        load_weights(path, expect_shapes=expect)
    message = str(info.value)
    assert "'fc1.weight' has shape (5, 4), the architecture expects (2, 4)" in message and str(path) in message
    expect["extra.weight"] = (1,)
    del expect["out.bias"]
    with pytest.raises(RunError, match=r"'extra.weight' is missing.*'out.bias' is not part of the architecture"):
        load_weights(path, expect_shapes=expect)


# ------------------------------------------------------------------------------------------- resume state


def _trained_optimizers() -> tuple[nn.Module, list[torch.optim.Optimizer]]:
    torch.manual_seed(0)
    model = nn.Linear(4, 3)
    optimizers = [
        torch.optim.Adam(model.parameters(), lr=0.01),
        torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9),
        torch.optim.LBFGS(model.parameters(), lr=0.5, max_iter=3, history_size=4),
    ]
    x, y = torch.randn(8, 4), torch.randint(0, 3, (8,))
    for opt in optimizers:
        for _ in range(2):

            def closure(opt: torch.optim.Optimizer = opt) -> torch.Tensor:
                opt.zero_grad()
                loss = nn.functional.cross_entropy(model(x), y)
                loss.backward()
                return loss

            opt.step(closure)
    return model, optimizers


def _assert_same(a: object, b: object) -> None:
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    elif isinstance(a, dict):
        assert isinstance(b, dict) and list(a) == list(b)
        for k in a:
            _assert_same(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            _assert_same(x, y)
    else:
        assert a == b or (a != a and b != b)  # noqa: PLR0124 - NaN equals NaN here


def test_state_round_trip_with_adam_sgd_lbfgs_and_rng(tmp_path: Path) -> None:
    model, optimizers = _trained_optimizers()
    generator = torch.Generator().manual_seed(7)
    generator_state = generator.get_state()
    state = {
        "epoch": 4,
        "model": model.state_dict(),
        "optimizers": [opt.state_dict() for opt in optimizers],
        "torch_rng": torch.get_rng_state(),
        "shuffle_rng": generator_state,
        "numpy_rng": torch.from_numpy(np.random.default_rng(3).integers(0, 2**32, 4, dtype=np.uint64).astype(np.int64)),
        "best_val_loss": 0.25,
        "misc": (1, 2.5, None, True, "text"),
    }
    save_state(tmp_path / "state.pt", state)
    loaded = load_state(tmp_path / "state.pt")
    _assert_same(state, loaded)
    # the optimizers take their state back, and the generator continues the same sequence
    _, fresh = _trained_optimizers()
    for opt, sd in zip(fresh, loaded["optimizers"], strict=True):
        opt.load_state_dict(sd)
    expected = torch.randperm(20, generator=generator)
    again = torch.Generator()
    again.set_state(loaded["shuffle_rng"])
    assert torch.equal(torch.randperm(20, generator=again), expected)


def test_save_state_refuses_what_load_would_refuse(tmp_path: Path) -> None:
    with pytest.raises(RunError, match=r"cannot be loaded safely.*numpy"):
        save_state(
            tmp_path / "state.pt", {"numpy_rng": np.random.default_rng(0).bit_generator.state["state"], "a": np.ones(2)}
        )
    assert not (tmp_path / "state.pt").exists()


def test_missing_and_garbage_state(tmp_path: Path) -> None:
    with pytest.raises(RunError, match="does not exist"):
        load_state(tmp_path / "state.pt")
    for content in (b"", b"garbage", b"PK\x03\x04garbage", _pickle_bytes()):
        (tmp_path / "state.pt").write_bytes(content)
        with pytest.raises(RunError, match="refused") as info:
            load_state(tmp_path / "state.pt")
        assert str(tmp_path / "state.pt") in str(info.value)
    torch.save([1, 2], tmp_path / "state.pt")
    with pytest.raises(RunError, match="not a dict"):
        load_state(tmp_path / "state.pt")


class Payload:
    """Unpickling this runs ``touch MARKER``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (os.system, (f"touch {self.marker}",))


def _malicious(path: Path, marker: Path, kind: str) -> None:
    if kind == "pickle":
        path.write_bytes(pickle.dumps({"epoch": 1, "x": Payload(marker)}, protocol=2))
    elif kind == "pickle-protocol-4":
        path.write_bytes(pickle.dumps({"epoch": 1, "x": Payload(marker)}, protocol=4))
    else:
        torch.save({"epoch": 1, "model": {"w": torch.ones(2)}, "x": Payload(marker)}, path)


LOADER = textwrap.dedent(
    """
    import sys, torch
    from nnsee.errors import RunError
    from nnsee.train.checkpoint import load_state
    for path in sys.argv[1:]:
        try:
            load_state(path)
        except RunError as exc:
            print("REFUSED", exc)
        else:
            print("LOADED", path)
        try:  # what torch alone does with an explicit weights_only=True under these environment variables
            torch.load(path, weights_only=True)
        except Exception as exc:
            print("TORCH-REFUSED", type(exc).__name__)
        else:
            print("TORCH-LOADED", path)
    """
)
KINDS = ["pickle", "pickle-protocol-4", "torch-zip"]


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1"},
        {"TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1", "TORCH_FORCE_WEIGHTS_ONLY_LOAD": "1"},
    ],
    ids=["plain", "force-no-weights-only", "both-env-vars"],
)
def test_malicious_state_refused_without_running_code(tmp_path: Path, env: dict[str, str]) -> None:
    paths, marker = [tmp_path / f"{kind}.pt" for kind in KINDS], tmp_path / "MARKER"
    for path, kind in zip(paths, KINDS, strict=True):
        _malicious(path, marker, kind)
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("TORCH_FORCE")} | env
    result = subprocess.run(
        [sys.executable, "-c", LOADER, *map(str, paths)], capture_output=True, text=True, env=child_env, timeout=120
    )
    lines = result.stdout.splitlines()
    assert len(lines) == 2 * len(paths), result.stdout + result.stderr
    for path, ours, theirs in zip(paths, lines[::2], lines[1::2], strict=True):
        assert ours.startswith("REFUSED") and "possibly malicious" in ours and str(path) in ours, ours
        # torch 2.13 honours an explicit weights_only=True even with TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1
        assert theirs.startswith("TORCH-REFUSED"), theirs
    assert not marker.exists()


def test_the_malicious_payload_is_real(tmp_path: Path) -> None:
    """Guard against a toothless test: a plain unpickler does run the payload."""
    path, marker = tmp_path / "state.pt", tmp_path / "MARKER"
    _malicious(path, marker, "pickle")
    subprocess.run(
        [sys.executable, "-c", f"import pickle; pickle.load(open({str(path)!r}, 'rb'))"], check=True, timeout=60
    )
    assert marker.exists()


def test_refused_even_if_the_process_allowlisted_os_system(tmp_path: Path) -> None:
    path, marker = tmp_path / "state.pt", tmp_path / "MARKER"
    _malicious(path, marker, "torch-zip")
    with torch.serialization.safe_globals([os.system]), pytest.raises(RunError, match=r"possibly malicious.*system"):
        load_state(path)
    assert not marker.exists()


class ExecPayload:
    """Unpickling this runs ``exec``, which is outside torch's own blocklist (os, posix, nt, sys)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (exec, (f"open({str(self.marker)!r}, 'w').close()",))


def test_refused_even_if_the_process_allowlisted_exec(tmp_path: Path) -> None:
    path, marker = tmp_path / "state.pt", tmp_path / "MARKER"
    torch.save({"epoch": 1, "x": ExecPayload(marker)}, path)
    with torch.serialization.safe_globals([exec]):
        with pytest.raises(RunError, match=r"possibly malicious.*exec"):
            load_state(path)
        assert not marker.exists()
        assert exec in torch.serialization.get_safe_globals()  # the process's own list is back after the load
        torch.load(path, weights_only=True)  # guard against a toothless test: torch alone runs it
    assert marker.exists()


def test_state_file_is_safetensors_plus_json_without_pickle(tmp_path: Path) -> None:
    path = tmp_path / "state.safetensors"
    save_state(path, {"epoch": 3, "rng": torch.get_rng_state(), "opt": {0: {"betas": (0.9, 0.999)}}, "x": float("inf")})
    raw = path.read_bytes()
    assert raw[:1] not in (b"P", b"\x80") and b"pickle" not in raw
    from safetensors import safe_open

    with safe_open(path, framework="pt") as f:
        tree = json.loads(f.metadata()["state"])
        assert f.get_tensor("0").dtype == torch.uint8
    assert tree == {
        "epoch": 3,
        "rng": {"$tensor": "0"},
        "opt": {"$items": [[0, {"betas": {"$tuple": [0.9, 0.999]}}]]},
        "x": {"$float": "inf"},
    }
    loaded = load_state(path)
    assert loaded["opt"] == {0: {"betas": (0.9, 0.999)}} and loaded["x"] == float("inf")


BAD_STATES = {
    "no state entry": ({"nnsee_state_version": "1"}, {}),
    "state not JSON": ({"nnsee_state_version": "1", "state": "{oops"}, {}),
    "reference to no tensor": ({"nnsee_state_version": "1", "state": '{"w": {"$tensor": "7"}}'}, {}),
    "unknown tag": ({"nnsee_state_version": "1", "state": '{"w": {"$eval": "1"}}'}, {}),
    "dict key not a key": ({"nnsee_state_version": "1", "state": '{"w": {"$items": [[[1], 2]]}}'}, {}),
    "not a dict": ({"nnsee_state_version": "1", "state": "[1, 2]"}, {}),
    "deeply nested": ({"nnsee_state_version": "1", "state": "[" * 100_000 + "]" * 100_000}, {}),
    "newer state format": ({"nnsee_state_version": "2", "state": "{}"}, {}),
    "weights file, not state": ({"nnsee_format_version": "1", "class_names": "[]"}, {"w": torch.ones(2)}),
}


@pytest.mark.parametrize("case", list(BAD_STATES))
def test_bad_state_file_refused_in_one_line(tmp_path: Path, case: str) -> None:
    metadata, tensors = BAD_STATES[case]
    path = tmp_path / "state.safetensors"
    save_file(tensors, path, metadata=metadata)
    with pytest.raises(RunError, match="refused") as info:
        load_state(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_a_folder_in_place_of_the_file_cannot_be_read(tmp_path: Path) -> None:
    for name, load in (("model.safetensors", load_weights), ("state.safetensors", load_state)):
        (tmp_path / name).mkdir()
        with pytest.raises(RunError, match="could not read") as info:
            load(tmp_path / name)
        assert str(tmp_path / name) in str(info.value) and "malicious" not in str(info.value)
