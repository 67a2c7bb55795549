"""``--device auto|cpu|cuda[:N]|mps`` on every command that computes (issue 12 part 4), on a machine without a GPU.

What can be shown here: ``auto`` resolves to ``cuda:0`` exactly when CUDA is available (and never to ``mps``); a
device this machine lacks is one line and exit status 1 from every command, before anything is read or written;
with CUDA present (faked: ``torch.cuda.is_available`` patched, the loaders and trainers stopped before they place
anything) every command hands its loader or trainer the device it resolved; the device run.json records never
decides where a run loads.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from click.testing import CliRunner, Result
from PIL import Image
from tiny import banded_npz

import nnsee.adoption
import nnsee.train
import nnsee.train.run
from nnsee.cli import main
from nnsee.errors import TrainingError
from nnsee.serve import views
from nnsee.studies import overfit, standardization
from nnsee.train.config import TrainConfig, resolve_device
from nnsee.train.run import load_run

#: A device this machine does not have: plain ``cuda`` without CUDA (the issue's must-show), else one GPU too many.
MISSING = "cuda" if not torch.cuda.is_available() else f"cuda:{torch.cuda.device_count()}"


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 10x10 3-class npz, a softmax run trained on it for one epoch, and one image."""
    root = tmp_path_factory.mktemp("devices")
    x, _ = banded_npz(root / "d.npz", 20, 10, step=3, width=3, seed=1)
    Image.fromarray((x[0] * 255).astype(np.uint8)).save(root / "img.png")
    result = CliRunner().invoke(main, ["train", "--data", str(root / "d.npz"), "--epochs", "1", "--out",
                                       str(root / "run")])
    assert result.exit_code == 0, result.stderr
    return root


def _copy_recorded_on(source: Path, run: Path, device: str) -> tuple[Path, dict[str, Any]]:
    """A copy of the run ``source`` at ``run`` whose run.json says it trained on ``device``; (run, its run.json)."""
    run.mkdir()
    for file in source.iterdir():
        if file.is_file():
            (run / file.name).write_bytes(file.read_bytes())
    doc = json.loads((run / "run.json").read_text())
    doc["config"]["device"] = device
    (run / "run.json").write_text(json.dumps(doc))
    return run, doc


def _contents(folder: Path) -> dict[str, bytes | None]:
    return {str(p.relative_to(folder)): p.read_bytes() if p.is_file() else None for p in sorted(folder.rglob("*"))}


def _commands(base: Path, out: Path) -> dict[str, list[str]]:
    """Every command that computes, with arguments it accepts (its outputs under ``out``)."""
    run, npz = str(base / "run"), str(base / "d.npz")
    return {
        "train": ["train", "--data", npz, "--epochs", "1", "--out", str(out / "train")],
        "resume": ["resume", run, "--epochs", "1"],
        "adopt": ["adopt", "--out", str(out / "adopt"), "--code", f"{base / 'absent.py'}:net", "--weights",
                  str(base / "absent.pt"), "--input-shape", "1x10x10", "--normalize", "none", "--data", npz],
        "evaluate": ["evaluate", run],
        "report": ["report", run, "--out", str(out / "report")],
        "explain": ["explain", run, str(base / "img.png"), "--out", str(out / "explain")],
        "maximize": ["maximize", run, "--target", "0", "--steps", "2", "--out", str(out / "max.png")],
        "serve": ["serve", run, "--port", "8765"],
        "study overfit": ["study", "overfit", "--data", npz, "--per-class", "3", "--out", str(out / "overfit")],
        "study standardization": ["study", "standardization", "--data", npz, "--epochs", "1", "--out",
                                  str(out / "standardization")],
    }


@pytest.mark.parametrize("command", list(_commands(Path("."), Path("."))))
def test_a_missing_device_is_one_line_from_every_command_before_anything_is_touched(base: Path, tmp_path: Path,
                                                                                    command: str) -> None:
    before = _contents(base)
    result: Result = CliRunner().invoke(main, [*_commands(base, tmp_path)[command], "--device", MISSING])
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code == 1, (result.exit_code, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --device"), result.stderr
    if not torch.cuda.is_available():
        assert "CUDA is not available here; use --device cpu" in lines[0]
    assert list(tmp_path.iterdir()) == [] and _contents(base) == before
    assert "nnsee serving" not in result.stdout


def test_auto_is_the_first_gpu_only_where_cuda_is_and_never_mps(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == "cpu" and resolve_device() == "cpu"
    assert resolve_device("mps") == "mps"  # passed through to torch when named
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("auto") == "cuda:0"
    assert [resolve_device(d) for d in ("cpu", "cuda", "cuda:1", torch.device("cuda", 1))] == \
        ["cpu", "cuda", "cuda:1", "cuda:1"]
    with pytest.raises(TrainingError, match="'cuda:2' is not on this machine: use one of auto, cpu, cuda, cuda:0"):
        resolve_device("cuda:2")
    assert TrainConfig(device="auto").device == "cuda:0"  # a run records the device auto picked


class Stop(Exception):
    """Raised by the spies: nothing is placed on the (absent) GPU."""


@pytest.mark.parametrize(("given", "expected"), [([], "cuda:0"), (["--device", "cpu"], "cpu")],
                         ids=["auto", "cpu"])
def test_every_command_hands_its_loader_or_trainer_the_device_it_resolved(
        base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, given: list[str], expected: str) -> None:
    """CUDA faked present: the default (auto) reaches every loader and trainer as cuda:0, --device cpu as cpu."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    seen: list[Any] = []

    def loader(path: Any, *args: Any, device: Any = None, **kwargs: Any) -> Any:
        seen.append(device)
        raise Stop

    def trainer(model: Any, data: Any, config: TrainConfig, *args: Any, **kwargs: Any) -> Any:
        seen.append(config.device)
        raise Stop

    for module in (nnsee.train, nnsee.train.run, views):
        monkeypatch.setattr(module, "load_run", loader)
    for module in (nnsee.train, overfit, standardization):
        monkeypatch.setattr(module, "fit", trainer)

    def resumer(run: Any, epochs: Any = None, *, allow_changed_data: bool = False, device: Any = None,
                **kwargs: Any) -> Any:  # and dist=, workers= (torchrun, streamed runs)
        seen.append(device)
        raise Stop

    def adopt(*args: Any, device: str = "cpu", **kwargs: Any) -> Any:  # its signature: what the CLI reads
        raise AssertionError("adopt_code is called")

    def adopt_code(code: str, **options: Any) -> Any:
        seen.append(options.get("device"))
        raise Stop

    # resume and adopt pass the device once nnsee.train.fit.resume and nnsee.adoption.adopt take it (as these do)
    monkeypatch.setattr(nnsee.train, "resume", resumer)
    monkeypatch.setattr(nnsee.adoption, "adopt", adopt)
    monkeypatch.setattr(nnsee.adoption, "adopt_code", adopt_code)
    for name, args in _commands(base, tmp_path).items():
        seen.clear()
        result = CliRunner().invoke(main, [*args, *given])
        assert isinstance(result.exception, Stop), (name, result.exception, result.stderr)
        assert seen == [expected], (name, seen)


def test_the_device_run_json_records_never_decides_where_a_run_loads(base: Path, tmp_path: Path) -> None:
    """A run trained on cuda:3 loads here, on the CPU (or where asked), and the CLI computes with it."""
    run, doc = _copy_recorded_on(base / "run", tmp_path / "run", "cuda:3")
    for loaded in (load_run(run), load_run(run, device="cpu"), load_run(run, device="auto"),
                   load_run(run, map_location=torch.device("cpu"))):
        assert {p.device.type for p in loaded.model.parameters()} == {"cpu"}
        assert loaded.config["device"] == "cuda:3"  # recorded, not obeyed
    with pytest.raises(TrainingError, match="device"):
        load_run(run, device=MISSING)
    for args in (["evaluate", str(run)], ["explain", str(run), str(base / "img.png"), "--out", str(tmp_path / "e")]):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 0, result.stderr
    # resuming takes the device it is given, not the recorded one (nnsee.train.fit.resume passes it here)
    assert TrainConfig.from_dict(doc["config"], device="cpu").device == "cpu"
    with pytest.raises(TrainingError, match="cuda:3"):
        TrainConfig.from_dict(doc["config"])


def test_resume_continues_a_run_recorded_on_a_gpu_on_the_device_it_is_given(base: Path, tmp_path: Path) -> None:
    """nnsee resume --device cpu (and auto, here) continues a run whose run.json says cuda:3; the new epoch is
    trained and recorded with the device it ran on."""
    run, doc = _copy_recorded_on(base / "run", tmp_path / "run", "cuda:3")
    result = CliRunner().invoke(main, ["resume", str(run), "--epochs", "1", "--device", "cpu"])
    assert result.exit_code == 0, result.stderr
    after = json.loads((run / "run.json").read_text())
    assert after["epoch"] == doc["epoch"] + 1 and after["config"]["device"] == "cpu"
