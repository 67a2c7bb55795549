"""`nnsee adopt --weights model.pt2` (no --code) and `nnsee.adopt(program or path)`: the user's trained ResNet-shaped
model (tests/adopt/user_code.py) exported with torch.export, adopted at 3x32x32, and compared with the same model
adopted from its code and state dict: every method both allow gives the same maps; guided backprop and the deconvnet
refuse in one line on the graph (its ReLUs are graph operations). References: the user's own module."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from nnsee.errors import RunError
from tests.adopt.user_code import ARGS, CLASSES, adopt_args, cli, refused

SHAPE = ["--input-shape", "3x32x32", "--normalize", "imagenet"]
FREE_BATCH = ({0: torch.export.Dim("batch")},)


def user_model() -> torch.nn.Module:
    from mynets.zoo import resnet18

    model = resnet18(**ARGS)
    model.load_state_dict(torch.load(Path(sys.modules["mynets"].__file__).parents[2] / "weights.pt"))
    return model.eval()


def export(model: torch.nn.Module, path: Path, shape: tuple[int, ...] = (2, 3, 32, 32), free: bool = True) -> Path:
    program = torch.export.export(model, (torch.zeros(shape),), dynamic_shapes=FREE_BATCH if free else None)
    torch.export.save(program, path)
    return path


@pytest.fixture(scope="module")
def archive(project: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export(user_model(), tmp_path_factory.mktemp("export") / "user.pt2")


@pytest.fixture(scope="module")
def runs(project: dict[str, Path], archive: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("runs")
    code, stdout, stderr = cli("adopt", "--out", root / "exported", "--weights", archive, *SHAPE,
                               "--data", project["data"])
    assert code == 0, stderr
    assert f"adopted {archive} into" in stdout and "importing" not in stderr
    code, _, stderr = cli(*adopt_args(project, root / "coded"))
    assert code == 0, stderr
    return {"exported": root / "exported", "coded": root / "coded"}


def test_run_keeps_the_archive_and_no_code(runs: dict[str, Path], archive: Path) -> None:
    run = runs["exported"]
    meta = json.loads((run / "run.json").read_text())
    record = meta["model"].pop("export")
    assert meta["model"] == {"kind": "adopted", "code": None, "code_args": {}, "output": None,
                             "input_shape": [3, 32, 32], "n_classes": 3}
    assert record == {"file": "model.pt2", "sha256": hashlib.sha256(archive.read_bytes()).hexdigest(),
                      "bytes": archive.stat().st_size, "source": str(archive.resolve())}
    assert (run / "model.pt2").read_bytes() == archive.read_bytes()
    assert sorted(p.name for p in run.iterdir()) == ["model.pt2", "model.safetensors", "run.json"]


def test_loads_with_no_user_code(runs: dict[str, Path], project: dict[str, Path], tmp_path: Path) -> None:
    """A fresh process without the user's package on its path explains the run."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([sys.executable, "-m", "nnsee.cli", "explain", str(runs["exported"]),
                           str(project["data"] / "red/0.png"), "--method", "grad-cam", "--out", str(tmp_path)],
                          capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "grad-cam of" in done.stdout and "importing" not in done.stderr and "warning" not in done.stderr


def test_same_model_as_from_code(runs: dict[str, Path]) -> None:
    from nnsee.train import load_run

    graph, coded = load_run(runs["exported"]).model, load_run(runs["coded"]).model
    x = torch.randn(5, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.equal(graph(x), user_model()(x)) and torch.equal(graph(x), coded(x))
    names = [n for n, _ in user_model().named_modules()]
    assert [n for n, _ in graph.named_modules()] == names  # dotted names kept by unflatten
    assert type(graph.get_submodule("layer3.1.conv2")).__name__ == "Conv2d"


def test_every_method_equals_the_model_from_code(runs: dict[str, Path], project: dict[str, Path],
                                                 tmp_path: Path) -> None:
    from nnsee.methods.one_image import view_names
    from nnsee.report.explain import explain_files
    from nnsee.train import load_run

    graph, coded = load_run(runs["exported"]), load_run(runs["coded"])
    image = project["data"] / "green" / "2.png"
    methods = [m for m in view_names(coded.model, coded.input_shape) if m not in ("guided-backprop", "deconvnet")]
    assert {"saliency", "gradient-x-input", "integrated-gradients", "occlusion", "grad-cam", "smoothgrad"} <= set(
        methods)
    for method in methods:
        (a,) = explain_files(graph, [image], tmp_path / "g", method)
        (b,) = explain_files(coded, [image], tmp_path / "c", method)
        got, want = np.asarray(a["map"]["values"]), np.asarray(b["map"]["values"])
        assert a["predicted"] == b["predicted"] and got.shape == want.shape, method
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-5 * max(float(np.abs(want).max()), 1e-12),
                                   err_msg=method)
    for layer in ("layer2.1.conv2", "layer3.1.conv2", "layer4"):
        (a,) = explain_files(graph, [image], tmp_path / "g", "grad-cam", options={"layer": layer})
        (b,) = explain_files(coded, [image], tmp_path / "c", "grad-cam", options={"layer": layer})
        np.testing.assert_allclose(a["map"]["values"], b["map"]["values"], rtol=0, atol=1e-6, err_msg=layer)


def test_guided_backprop_and_deconvnet_refuse_on_the_graph(runs: dict[str, Path], project: dict[str, Path],
                                                          tmp_path: Path) -> None:
    from nnsee.models.capabilities import capabilities
    from nnsee.train import load_run

    loaded = load_run(runs["exported"])
    caps = capabilities(loaded.model, loaded.input_shape)
    assert caps.relu_modules == 0 and caps.graph_relus == 17 and caps.conv_layers[-1] == "layer4.1.conv2"
    assert "operations of a torch.export graph, not nn.ReLU modules" in caps.relu_rule
    assert capabilities(user_model()).relu_rule is None
    for method in ("guided-backprop", "deconvnet"):
        code, _, stderr = cli("explain", runs["exported"], project["data"] / "red/1.png", "--method", method,
                              "--out", tmp_path)
        assert "nn.ReLU" in refused(code, stderr)


def test_methods_list_leaves_out_the_relu_rule_methods(runs: dict[str, Path]) -> None:
    from nnsee.methods.one_image import view_names
    from nnsee.train import load_run

    loaded = load_run(runs["exported"])
    assert not {"guided-backprop", "deconvnet"} & set(view_names(loaded.model, loaded.input_shape))


def test_python_adopt_from_a_program_or_a_path(project: dict[str, Path], archive: Path, tmp_path: Path) -> None:
    import nnsee
    from nnsee.train import load_run

    program = torch.export.export(user_model(), (torch.zeros(2, 3, 32, 32),), dynamic_shapes=FREE_BATCH)
    x = torch.rand(3, 3, 32, 32)
    for name, given in (("program", program), ("path", archive), ("str", str(archive))):
        run = nnsee.adopt(given, class_names=list(CLASSES), input_shape=(3, 32, 32), out=tmp_path / name)
        with torch.no_grad():
            assert torch.equal(run.model(x), user_model()(x)) and torch.equal(load_run(run.path).model(x), run.model(x))
    with pytest.raises(RunError, match="code= is not used with a torch.export archive"):
        nnsee.adopt(archive, class_names=list(CLASSES), input_shape=(3, 32, 32), out=tmp_path / "c",
                    code="mynets.zoo:resnet18")
    assert not (tmp_path / "c").exists()


def test_a_changed_archive_in_the_run_is_refused(runs: dict[str, Path], archive: Path, tmp_path: Path) -> None:
    import shutil

    from nnsee.train import load_run

    run = tmp_path / "copy"
    shutil.copytree(runs["exported"], run)
    export(user_model().train(), run / "model.pt2")  # another program under the same name
    with pytest.raises(RunError, match="not the archive this run was adopted from"):
        load_run(run)
    (run / "model.pt2").unlink()
    with pytest.raises(RunError, match="model.pt2 is missing"):
        load_run(run)


# ----------------------------------------------------------------------------------------------------- bad inputs

def refused_archive(project: dict[str, Path], out: Path, weights: Path, *extra: str) -> str:
    line = refused(*cli("adopt", "--out", out, "--weights", weights, *SHAPE, "--classes", project["classes"],
                        *extra)[::2])
    assert not out.exists() or not any(out.iterdir())  # nothing written
    return line


def test_bad_archives(project: dict[str, Path], archive: Path, tmp_path: Path) -> None:
    out = tmp_path / "r"
    (tmp_path / "text.pt2").write_text("not a zip\n")
    assert "is not a torch.export archive" in refused_archive(project, out, tmp_path / "text.pt2")
    data = archive.read_bytes()
    (tmp_path / "cut.pt2").write_bytes(data[: len(data) // 2])
    assert "a truncated copy?" in refused_archive(project, out, tmp_path / "cut.pt2")
    with zipfile.ZipFile(tmp_path / "other.pt2", "w") as z:
        z.writestr("notes/readme.txt", "a zip, but no exported program")
    assert "is not a readable torch.export archive" in refused_archive(project, out, tmp_path / "other.pt2")
    assert "does not exist" in refused_archive(project, out, tmp_path / "missing.pt2")


def test_archive_shape_and_batch_and_mode(project: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "r"
    line = refused(*cli("adopt", "--out", out, "--weights", export(user_model(), tmp_path / "m.pt2"),
                        "--input-shape", "3x64x64", "--normalize", "imagenet", "--classes", project["classes"])[::2])
    assert "was exported for input 3x32x32 (C x H x W), but --input-shape is 3x64x64" in line

    class Flat(torch.nn.Module):  # a view that writes the export's batch size into the graph
        def __init__(self) -> None:
            super().__init__()
            self.fc = torch.nn.Linear(3 * 32 * 32, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(x.reshape(2, -1))

    line = refused_archive(project, out, export(Flat(), tmp_path / "fixed.pt2", free=False))
    assert "does not run on batches of other sizes" in line and "dynamic_shapes" in line
    line = refused_archive(project, out, export(user_model().train(), tmp_path / "train.pt2"))
    assert "uses batch statistics (aten.batch_norm)" in line and "export the model in eval mode" in line


def test_code_with_an_archive(project: dict[str, Path], archive: Path, tmp_path: Path) -> None:
    code, _, stderr = cli(*adopt_args(project, tmp_path / "r", weights=str(archive)))
    assert "holds the model itself: give it with --weights and no --code" in refused(code, stderr)
    assert "importing" not in stderr  # refused before the user's code runs
    line = refused_archive(project, tmp_path / "r", project["pt"])
    assert "is not a torch.export archive (.pt2): a state dict needs the model's code, --code" in line
    code, _, stderr = cli("adopt", "--out", tmp_path / "r", "--weights", archive, *SHAPE, "--classes",
                          project["classes"], "--code-args", "{}")
    assert code == 2 and "--code-args goes with --code" in stderr


def test_archive_size_budget(project: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    from nnsee.models import exported

    big = tmp_path / "big.pt2"
    with open(big, "wb") as f:  # sparse: 3 GiB on paper, nothing on disk
        f.truncate(3 << 30)
    start = time.perf_counter()
    assert "more than the 2,147,483,648 an export archive may take" in refused_archive(project, tmp_path / "r", big)
    assert time.perf_counter() - start < 5
    monkeypatch.setattr(exported, "MAX_ARCHIVE_BYTES", 200_000)  # an archive that unpacks past the budget
    with zipfile.ZipFile(tmp_path / "bomb.pt2", "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("data/zeros", bytes(1_000_000))
    assert (tmp_path / "bomb.pt2").stat().st_size < 200_000
    with pytest.raises(RunError, match="unpacks to 1 files of 1,000,000 bytes"):
        exported.load_archive(tmp_path / "bomb.pt2", (3, 32, 32))


class Opener:
    """Unpickling this creates ``path`` (what a pickled payload in an archive could do with ``weights_only=False``)."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self) -> tuple:
        return (open, (self.path, "w"))


def test_pickled_payload_never_runs(project: dict[str, Path], archive: Path, tmp_path: Path) -> None:
    """torch.export.load falls back to torch.load(weights_only=False) for an archive's sample inputs; nnsee forces
    weights_only=True for every load inside, so the payload is refused and never runs."""
    evil, marker = tmp_path / "evil.pt2", tmp_path / "pwned"
    torch.save(Opener(marker), tmp_path / "payload.pt")
    with zipfile.ZipFile(archive) as src, zipfile.ZipFile(evil, "w") as dst:
        for info in src.infolist():
            replaced = info.filename.endswith("data/sample_inputs/model.pt")
            dst.writestr(info, (tmp_path / "payload.pt").read_bytes() if replaced else src.read(info))
    assert "holds pickled Python objects besides tensors" in refused_archive(project, tmp_path / "r", evil)
    assert not marker.exists()
    with pytest.raises(Exception):  # noqa: B017 (torch's own load: the payload runs, then the load fails)
        torch.export.load(evil)
    assert marker.exists()  # so the check above could fail


def test_maximize_on_the_adopted_rgb_resnet(runs: dict[str, Path], tmp_path: Path) -> None:
    """A class and a dotted layer's channel, on both runs: a colour PNG (channels differ), the same for both."""
    from PIL import Image

    pictures = {}
    for kind, run in runs.items():
        for target in ("red", "layer3.1.conv2:5"):
            out = tmp_path / f"{kind}-{target.replace(':', '_')}.png"
            code, stdout, stderr = cli("maximize", run, "--target", target, "--steps", "8", "--out", out)
            assert code == 0, stderr
            picture = np.asarray(Image.open(out))
            assert picture.ndim == 3 and picture.shape[2] == 3
            assert np.abs(picture[..., 0].astype(int) - picture[..., 2]).max() > 0  # colour, not grey
            pictures[kind, target] = picture
    for target in ("red", "layer3.1.conv2:5"):
        assert np.abs(pictures["exported", target].astype(int) - pictures["coded", target]).max() <= 1
    line = refused(*cli("maximize", runs["exported"], "--target", "layer3.1.conv9:5", "--steps", "1")[::2])
    assert "did you mean 'layer3.1.conv2'" in line


def test_device_without_cuda_is_refused_before_anything_is_read(project: dict[str, Path], archive: Path,
                                                                tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")  # the refusal is what a machine without it says
    for weights, extra in ((archive, ()), (project["pt"], ("--code", "mynets.zoo:resnet18", "--code-args",
                                                             json.dumps(ARGS)))):
        code, _, stderr = cli("adopt", "--out", tmp_path / "r", "--weights", weights, *SHAPE, "--classes",
                              project["classes"], "--device", "cuda", *extra)
        assert "CUDA is not available here" in refused(code, stderr) and "importing" not in stderr
        assert not (tmp_path / "r").exists()
    import nnsee
    from nnsee.adoption import adopt_archive, adopt_code
    from nnsee.errors import NnseeError

    common = {"class_names": list(CLASSES), "input_shape": (3, 32, 32), "out": tmp_path / "py", "device": "cuda"}
    for call in (lambda: adopt_archive(archive, **common),
                 lambda: adopt_code("mynets.zoo:resnet18", weights=project["pt"], code_args=ARGS, **common),
                 lambda: nnsee.adopt(archive, **common)):
        with pytest.raises(NnseeError, match="CUDA is not available here"):
            call()
        assert not (tmp_path / "py").exists()
    assert "importing" not in capsys.readouterr().err  # refused before the user's code is imported
    run = nnsee.adopt(archive, class_names=list(CLASSES), input_shape=(3, 32, 32), out=tmp_path / "cpu", device="cpu")
    assert next(run.model.parameters()).device.type == "cpu"


def test_evaluate_on_the_archive_run_equals_the_run_from_code(runs: dict[str, Path]) -> None:
    """The same trained model, one adopted from its export archive and one from its code: evaluate --data gives the
    same confusion matrices on every split (the run from code is checked against the user's own numbers in
    tests/adopt/test_adopt.py)."""
    scores = {}
    for name in ("exported", "coded"):
        for split in ("train", "val", "test"):
            code, stdout, stderr = cli("evaluate", runs[name], "--split", split, "--json", "--device", "cpu")
            assert code == 0, stderr
            scores[name, split] = json.loads(stdout)["confusion_matrix"]
    for split in ("train", "val", "test"):
        assert scores["exported", split] == scores["coded", split] and sum(map(sum, scores["coded", split])) > 0


def test_serve_answers_a_photo_with_the_archive_run(runs: dict[str, Path], project: dict[str, Path]) -> None:
    """The live page's API on loopback, with the run adopted from the archive: an uploaded PNG gets the prediction
    and the softmax of the user's own module on the photo normalized by hand (pixels / 255, torchvision's ImageNet
    mean and std), and guided backprop, which needs nn.ReLU modules, is not among the maps it offers."""
    from PIL import Image

    from tests.serve.serve_util import start_server, stop

    photo = project["data"] / "red" / "3.png"
    pixels = np.asarray(Image.open(photo).convert("RGB"), np.float32).transpose(2, 0, 1) / 255
    mean = np.array([0.485, 0.456, 0.406], np.float32)[:, None, None]
    std = np.array([0.229, 0.224, 0.225], np.float32)[:, None, None]
    with torch.no_grad():
        expected = torch.softmax(user_model()(torch.from_numpy((pixels - mean) / std)[None]), 1)[0].numpy()
    server = start_server([runs["exported"]], "--device", "cpu")
    try:
        status, body = server.raw("POST", "/api/explain?run=exported", photo.read_bytes(),
                                  {"Content-Type": "image/png"})
        methods = server.raw("GET", "/api/runs")
    finally:
        stop(server)
    assert status == 200, body
    answer = json.loads(body)
    assert answer["predicted"] == int(expected.argmax())
    np.testing.assert_allclose(answer["probabilities"], expected, atol=1e-5)
    assert methods[0] == 200 and b"saliency" in methods[1] and b"guided-backprop" not in methods[1]


def test_report_of_the_archive_run_shows_the_top9_without_projections(runs: dict[str, Path], tmp_path: Path) -> None:
    """The whole report builds for the run adopted from the archive: every stage's top-9 crops, with no deconvnet
    projection and the reason on the page (its ReLUs are graph operations); the projections of the run from code
    are there."""
    from nnsee.report import build_report

    page = build_report(runs["exported"], tmp_path / "report").read_text(encoding="utf-8")
    assert page.count('alt="top 9 images of map') >= 8 and 'alt="projections of map' not in page
    assert "No deconvnet projections: this model&#39;s 17 ReLUs are operations of a torch.export graph" in page
    assert "Grad-CAM at each stage" in page and "trained elsewhere" in page


def test_the_randomization_check_copies_an_archive_model(runs: dict[str, Path]) -> None:
    """deepcopy cannot copy an unflattened export graph (its nodes hold tensors of symbolic size): the randomized
    copy is made module by module, leaves the trained model as it was, and equals the randomized copy of the same
    model built from code (the same modules, reset in the same order with the same seed)."""
    from nnsee.methods.sanity import randomized
    from nnsee.train import load_run

    exported, coded = load_run(runs["exported"]).model, load_run(runs["coded"]).model
    x = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        trained = exported(x)
        shuffled, reference = randomized(exported, 0)(x), randomized(coded, 0)(x)
        assert torch.equal(exported(x), trained) and not torch.allclose(shuffled, trained, atol=1e-3)
    torch.testing.assert_close(shuffled, reference, rtol=0, atol=1e-5 * float(reference.abs().max()))
