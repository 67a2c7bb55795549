"""Each bad input of `nnsee adopt` is one error line (exit 1, no traceback) saying what is wrong and what to do,
and leaves no run folder behind."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest
import torch

from tests.adopt.user_code import adopt_args, cli, refused


def refused_adopt(project: dict[str, Path], out: Path, *extra: str, **options: object) -> str:
    line = refused(*cli(*adopt_args(project, out, *extra, **options))[::2])
    assert not (out / "run.json").exists()
    return line


def test_code_that_does_not_import(project: dict[str, Path], tmp_path: Path) -> None:
    line = refused_adopt(project, tmp_path / "r", code="mynets.bad_import:make")
    assert "could not import the model's code mynets.bad_import" in line and "not_a_module_nnsee_knows" in line
    line = refused_adopt(project, tmp_path / "r", code=str(tmp_path / "nowhere.py") + ":make")
    assert "there is no file" in line
    assert "has no callable 'nope'" in refused_adopt(project, tmp_path / "r", code="mynets.zoo:nope")
    assert "package.module:factory" in refused_adopt(project, tmp_path / "r", code="mynets.zoo")


def test_code_given_as_a_file_path(project: dict[str, Path], tmp_path: Path) -> None:
    code, _, stderr = cli(*adopt_args(project, tmp_path / "r", code=f"{project['pkg']}/mynets/zoo.py:resnet18"))
    assert code == 0, stderr
    assert f"importing {project['pkg']}/mynets/zoo.py" in stderr


def test_factory_that_raises(project: dict[str, Path], tmp_path: Path) -> None:
    line = refused_adopt(project, tmp_path / "r", code="mynets.variants:broken", args={})
    assert "mynets.variants:broken raised ValueError: the factory needs its config file" in line
    line = refused_adopt(project, tmp_path / "r", args={"n_classes": 3, "depth": 50})
    assert "raised TypeError" in line and "--code-args" in line


def test_weights_whose_keys_or_shapes_do_not_match(project: dict[str, Path], tmp_path: Path) -> None:
    state = torch.load(project["pt"])
    renamed = {("head." + k[3:] if k.startswith("fc.") else k): v for k, v in state.items()}
    del renamed["layer4.1.bn2.running_var"]
    torch.save(renamed, tmp_path / "renamed.pt")
    line = refused_adopt(project, tmp_path / "r", weights=str(tmp_path / "renamed.pt"))
    assert "missing keys (3): 'layer4.1.bn2.running_var', 'fc.weight', 'fc.bias'" in line
    assert "unexpected keys (2): 'head.weight', 'head.bias'" in line
    wide = dict(state, **{"conv1.weight": torch.zeros(16, 3, 7, 7)})
    torch.save(wide, tmp_path / "wide.pt")
    line = refused_adopt(project, tmp_path / "r", weights=str(tmp_path / "wide.pt"))
    assert "'conv1.weight' has shape (16, 3, 7, 7), the model's is (8, 3, 7, 7)" in line
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in renamed.items()}, tmp_path / "renamed.safetensors")
    line = refused_adopt(project, tmp_path / "r", weights=str(tmp_path / "renamed.safetensors"))
    assert "missing keys (3)" in line and "unexpected keys (2)" in line


def test_checkpoint_dict_and_prefixed_keys_are_accepted_and_said(project: dict[str, Path], tmp_path: Path) -> None:
    state = torch.load(project["pt"])
    torch.save({"epoch": 3, "state_dict": {"module." + k: v for k, v in state.items()}}, tmp_path / "ckpt.pt")
    code, _, stderr = cli(*adopt_args(project, tmp_path / "r", weights=str(tmp_path / "ckpt.pt")))
    assert code == 0, stderr
    assert "its 'state_dict' entry" in stderr and "start with 'module.'" in stderr


class Marker:
    """A pickle that would create a file when loaded unsafely."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple:
        return os.system, (f"touch {self.path}",)


def test_pickled_model_or_code_is_refused(project: dict[str, Path], tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from mynets.zoo import resnet18

    torch.save(resnet18(n_classes=3, width=8), tmp_path / "whole.pt")
    line = refused_adopt(project, tmp_path / "r", weights=str(tmp_path / "whole.pt"))
    assert "holds pickled Python objects" in line and "torch.save(model.state_dict(), 'weights.pt')" in line
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    for name, save in (("evil.pt", lambda f: torch.save({"x": Marker(tmp_path / "pwned")}, f)),
                       ("evil.pth", lambda f: f.write_bytes(pickle.dumps(Marker(tmp_path / "pwned"), protocol=2)))):
        save(tmp_path / name)
        assert "holds pickled Python objects" in refused_adopt(project, tmp_path / "r", weights=str(tmp_path / name))
    assert not (tmp_path / "pwned").exists()


def test_other_weights_files(project: dict[str, Path], tmp_path: Path) -> None:
    (tmp_path / "model.pt2").write_bytes(b"PK\x03\x04")
    code, _, stderr = cli(*adopt_args(project, tmp_path / "r", weights=str(tmp_path / "model.pt2")))
    assert "holds the model itself: give it with --weights and no --code" in refused(code, stderr)
    assert "importing" not in stderr  # refused before the user's code runs
    (tmp_path / "notes.txt").write_text("hello")
    assert "neither safetensors nor a torch.save file" in refused_adopt(
        project, tmp_path / "r", weights=str(tmp_path / "notes.txt"))
    (tmp_path / "cut.pt").write_bytes((tmp_path / "model.pt2").read_bytes() + bytes(100))
    assert "is not a readable torch.save file" in refused_adopt(project, tmp_path / "r",
                                                                weights=str(tmp_path / "cut.pt"))
    assert "does not exist" in refused_adopt(project, tmp_path / "r", weights=str(tmp_path / "missing.pt"))
    torch.save([torch.zeros(2)], tmp_path / "list.pt")
    assert "holds a list, not a state dict" in refused_adopt(project, tmp_path / "r", weights=str(tmp_path / "list.pt"))


def test_output_that_is_not_logits(project: dict[str, Path], tmp_path: Path) -> None:
    torch.save(torch.nn.Conv2d(3, 3, 3).state_dict(), tmp_path / "conv.pt")
    line = refused_adopt(project, tmp_path / "r", "--classes", project["classes"], code="mynets.variants:spatial",
                         args={}, weights=str(tmp_path / "conv.pt"))
    assert "returned a tensor of shape (2, 3, 30, 30) for 2 images, not logits of shape (N, classes)" in line


def test_class_names_that_do_not_match(project: dict[str, Path], tmp_path: Path) -> None:
    (tmp_path / "four.txt").write_text("a\nb\nc\nd\n")
    line = refused_adopt(project, tmp_path / "r", "--classes", tmp_path / "four.txt")
    assert "the model gives 3 outputs, but 4 class names were given" in line
    (tmp_path / "twice.json").write_text('["a", "b", "a"]')
    assert "these repeat: 'a'" in refused_adopt(project, tmp_path / "r", "--classes", tmp_path / "twice.json")
    code, _, stderr = cli(*adopt_args(project, tmp_path / "r", "--classes", project["classes"], "--data",
                                      project["data"]))
    assert code == 0, stderr  # the same names twice agree
    before = (tmp_path / "r" / "run.json").read_bytes()
    assert "a new or empty folder" in refused(*cli(*adopt_args(project, tmp_path / "r"))[::2])  # never over a run
    assert (tmp_path / "r" / "run.json").read_bytes() == before


def test_input_and_normalization(project: dict[str, Path], tmp_path: Path) -> None:
    args = adopt_args(project, tmp_path / "r")
    at = args.index("--normalize") + 1
    for value, says in (("0.5,0.5/0.2,0.2", "gives 2 means and 2 stds, the model takes 3 channels"),
                        ("0.5,0.5,0.5/0.2,0,0.2", "one finite mean and one std > 0 per channel"),
                        ("bright", "--normalize takes none, imagenet or MEAN1")):
        assert says in refused(*cli(*args[:at], value, *args[at + 1:])[::2])
    at = args.index("--input-shape") + 1
    assert "not square" in refused(*cli(*args[:at], "3x32x48", *args[at + 1:])[::2])
    assert "1 or 3 input channels" in refused(*cli(*args[:at], "4x32x32", *args[at + 1:])[::2])
