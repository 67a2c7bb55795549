"""`nnsee adopt` and `nnsee.adopt`: a user's ResNet-shaped model (BatchNorm, residual adds) from their own package on
disk, at 3x32x32, adopted into a run that explain (every method it allows), evaluate and reload work on; references
are computed here from the user's model and PIL-decoded pixels, never by nnsee's code."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tests.adopt.user_code import ARGS, CLASSES, adopt_args, cli, refused

MEAN = np.array([0.485, 0.456, 0.406], np.float32)[:, None, None]
STD = np.array([0.229, 0.224, 0.225], np.float32)[:, None, None]


@pytest.fixture(scope="module")
def run(project: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "adopted"
    code, stdout, stderr = cli(*adopt_args(project, out))
    assert code == 0, stderr
    assert "importing mynets.zoo" in stderr
    return out


def user_model():
    from mynets.zoo import resnet18

    model = resnet18(**ARGS)
    model.load_state_dict(torch.load(Path(sys.modules["mynets"].__file__).parents[2] / "weights.pt"))
    return model.eval()


def decoded(path: Path) -> np.ndarray:
    """The PNG's pixels in 0..1, (3, 32, 32): what the user feeds their model (no resize at 32 px)."""
    return np.asarray(Image.open(path).convert("RGB"), np.float32).transpose(2, 0, 1) / 255


def test_run_records_everything_but_code(run: Path, project: dict[str, Path]) -> None:
    meta = json.loads((run / "run.json").read_text())
    assert meta["model"] == {"kind": "adopted", "code": "mynets.zoo:resnet18", "code_args": ARGS, "output": None,
                             "input_shape": [3, 32, 32], "n_classes": 3}
    assert meta["class_names"] == list(CLASSES) and meta["input_shape"] == [3, 32, 32]
    assert meta["standardization"]["mean"] == [0.485, 0.456, 0.406]
    assert meta["data"]["spec"] == str(project["data"].resolve())
    assert sorted(p.name for p in run.iterdir()) == ["model.safetensors", "run.json"]
    from safetensors.torch import load_file

    stored, original = load_file(run / "model.safetensors"), user_model().state_dict()
    assert stored.keys() == original.keys() and all(torch.equal(stored[k], original[k]) for k in original)


def test_explain_every_allowed_method(run: Path, project: dict[str, Path], tmp_path: Path) -> None:
    from nnsee.methods.one_image import view_names
    from nnsee.report.explain import explain_files
    from nnsee.train import load_run

    loaded = load_run(run)
    allowed = view_names(loaded.model, loaded.input_shape)
    assert {"saliency", "gradient-x-input", "integrated-gradients", "occlusion", "guided-backprop", "deconvnet",
            "grad-cam", "smoothgrad"} <= set(allowed)
    image = project["data"] / "red" / "3.png"
    for method in allowed:
        (result,) = explain_files(loaded, [image], tmp_path, method)
        assert Path(result["png"]).stat().st_size > 0 and np.isfinite(result["map"]["values"]).all(), method
    # gradient x input of the predicted class, by autograd on the user's own model and our own normalization
    x = torch.tensor((decoded(image) - MEAN) / STD)[None].requires_grad_()
    logits = user_model()(x)
    k = int(logits.argmax())
    logits[0, k].backward()
    (result,) = explain_files(loaded, [image], tmp_path, "gradient-x-input")
    assert result["predicted"] == CLASSES[k]
    np.testing.assert_allclose(np.asarray(result["map"]["values"]), (x * x.grad)[0].detach().numpy(), atol=1e-5)


def test_cli_explain_says_which_module_it_imports(run: Path, project: dict[str, Path], tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": f"{project['pkg']}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    done = subprocess.run([sys.executable, "-m", "nnsee.cli", "explain", str(run), str(project["data"] / "red/0.png"),
                           "--method", "grad-cam", "--out", str(tmp_path)], capture_output=True, text=True, env=env,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert "importing mynets.zoo" in done.stderr and "grad-cam of" in done.stdout


def test_evaluate_reproduces_the_users_accuracy(run: Path, project: dict[str, Path]) -> None:
    total = np.zeros((3, 3), int)
    for split in ("train", "val", "test"):
        code, stdout, stderr = cli("evaluate", run, "--data", project["data"], "--split", split, "--json")
        assert code == 0, stderr
        total += np.asarray(json.loads(stdout)["confusion_matrix"])
    files = sorted(project["data"].glob("*/*.png"))
    x = torch.tensor(np.stack([(decoded(f) - MEAN) / STD for f in files]))
    with torch.no_grad():
        predicted = user_model()(x).argmax(1).numpy()
    truth = np.array([CLASSES.index(f.parent.name) for f in files])
    direct = np.zeros((3, 3), int)
    np.add.at(direct, (truth, predicted), 1)
    assert total.tolist() == direct.tolist()
    assert 1 / 3 < np.trace(direct) / len(files) < 1  # a real, imperfect accuracy


def test_python_adopt_without_and_with_code(project: dict[str, Path], tmp_path: Path) -> None:
    import nnsee
    from nnsee.train import load_run

    model = user_model().train()
    run = nnsee.adopt(model, class_names=list(CLASSES), input_shape=(3, 32, 32), normalize="imagenet",
                      out=tmp_path / "mine")
    assert model.training and not run.model.training  # the user's module is left as it was
    x = torch.rand(4, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(run.model(x), user_model()(x))
    with pytest.raises(nnsee.errors.RunError, match="without code=.*load_run"):
        load_run(tmp_path / "mine")
    assert torch.equal(load_run(tmp_path / "mine", model=user_model()).model(x), user_model()(x))
    nnsee.adopt(user_model(), class_names=list(CLASSES), input_shape=(3, 32, 32), normalize="imagenet",
                out=tmp_path / "coded", code="mynets.zoo:resnet18", code_args=ARGS)
    with torch.no_grad():
        assert torch.equal(load_run(tmp_path / "coded").model(x), user_model()(x))


def test_output_selector_for_tuple_and_dict_models(project: dict[str, Path], tmp_path: Path) -> None:
    from nnsee.train import load_run

    for kind, output in (("tuple", "0"), ("dict", "logits")):
        out = tmp_path / kind
        args = adopt_args(project, out, "--classes", project["classes"], code="mynets.variants:two_heads",
                          args={"kind": kind}, weights=str(tmp_path / "w.pt"))
        model = sys.modules.get("mynets.variants") or __import__("mynets.variants").variants
        torch.save(model.two_heads(kind).state_dict(), tmp_path / "w.pt")
        line = refused(*cli(*args)[::2])
        assert "pass --output" in line and ("tuple of 2" in line if kind == "tuple" else "'logits'" in line)
        code, _, stderr = cli(*args, "--output", output)
        assert code == 0, stderr
        loaded = load_run(out)
        assert loaded.meta["model"]["output"] == (0 if kind == "tuple" else "logits")
        assert loaded.model(torch.rand(2, 3, 32, 32)).shape == (2, 3)


def test_half_precision_in_train_mode_is_said_and_explained_in_float32(project: dict[str, Path],
                                                                       tmp_path: Path) -> None:
    from mynets.variants import half_in_training

    from nnsee.train import load_run

    torch.save(half_in_training().state_dict(), tmp_path / "half.pt")
    code, _, stderr = cli(*adopt_args(project, tmp_path / "run", "--classes", project["classes"],
                                      code="mynets.variants:half_in_training", args={},
                                      weights=str(tmp_path / "half.pt")))
    assert code == 0, stderr
    assert "float16 weights; nnsee explains it in float32" in stderr and "was in train mode" in stderr
    loaded = load_run(tmp_path / "run")
    assert all(p.dtype == torch.float32 for p in loaded.model.parameters()) and not loaded.model.training


def grey_explained(run: Path, project: dict[str, Path], tmp_path: Path) -> tuple[dict, str]:
    code, stdout, stderr = cli("explain", run, project["grey"], "--method", "gradient-x-input", "--json", "--out",
                               tmp_path)
    assert code == 0, stderr
    return json.loads(stdout)["images"][0], stdout + stderr


def test_grey_photo_for_an_rgb_model_is_converted(run: Path, project: dict[str, Path], tmp_path: Path) -> None:
    result, _ = grey_explained(run, project, tmp_path)
    grey = np.asarray(Image.open(project["grey"]), np.float32) / 255
    x = torch.tensor((np.repeat(grey[None], 3, axis=0) - MEAN) / STD)[None].requires_grad_()
    logits = user_model()(x)
    logits[0, int(logits.argmax())].backward()
    np.testing.assert_allclose(np.asarray(result["map"]["values"]), (x * x.grad)[0].detach().numpy(), atol=1e-5)


def test_grey_photo_conversion_is_said(run: Path, project: dict[str, Path], tmp_path: Path) -> None:
    _, said = grey_explained(run, project, tmp_path)
    assert "a grey image for a model of 3 channels: its grey is copied into R, G and B" in said


def test_report_builds_for_an_adopted_cnn(project: dict[str, Path], tmp_path: Path) -> None:
    from mynets.variants import small_cnn

    import nnsee

    nnsee.adopt(small_cnn(), input_shape=(3, 16, 16), normalize="0.5,0.5,0.5/0.25,0.25,0.25", out=tmp_path / "run",
                code="mynets.variants:small_cnn", data=str(project["data"]))
    code, stdout, stderr = cli("report", tmp_path / "run")
    assert code == 0, stderr
    assert "importing mynets.variants" in stderr
    page = (tmp_path / "run" / "report" / "index.html").read_text()
    assert all(name in page for name in CLASSES) and "Sequential" in page


def test_a_run_adopted_without_data_says_what_to_give(project: dict[str, Path], tmp_path: Path) -> None:
    """No --data at adopt time: report and evaluate say the run records no data set and how to give one."""
    out = tmp_path / "no-data"
    code, _, stderr = cli(*adopt_args(project, out, "--classes", project["classes"]))
    assert code == 0, stderr
    for command in (("report", out), ("evaluate", out)):
        code, _, stderr = cli(*command)
        assert code == 1 and "records no data set" in stderr and "--data SPEC" in stderr, stderr
        assert "Traceback" not in stderr


def test_report_builds_for_an_adopted_resnet(run: Path, tmp_path: Path) -> None:
    """Residual adds and BatchNorm: the CNN section is there (top-9 of whole images, since a branching model has no
    chain receptive field) and nothing warns (a randomization score undefined on every image stays NaN quietly)."""
    code, _, stderr = cli("report", run, "--out", tmp_path / "report")
    assert code == 0, stderr
    assert "warning" not in stderr.lower(), stderr
    page = (tmp_path / "report" / "index.html").read_text()
    assert "trained elsewhere, adopted with nnsee adopt" in page and "None lr" not in page
    for heading in ('id="cnn"', "First-layer filters", "Top 9 images per feature map", "Occlusion",
                    "Sanity check: do the maps depend on what the model learned?"):
        assert heading in page, heading
