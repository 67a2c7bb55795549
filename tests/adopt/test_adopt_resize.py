"""``nnsee adopt --resize torchvision``: every path that turns an image file into the adopted run's input applies
the run's rule. The user's own numbers are computed here by hand, as their evaluation script would (PIL, torchvision's
``Resize(round(16 * 256 / 224))`` + ``CenterCrop(16)`` written from its definitions, imagenet normalization, their
model): ``evaluate --data`` reproduces their confusion matrix, ``explain`` and the live page their probabilities,
on a folder of photos of many aspect ratios where nnsee's square crop would give other predictions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

from tests.adopt.user_code import cli, refused

pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")

SIZE = 16
CLASSES = ("ant", "bee", "cow")
MEAN = np.array([0.485, 0.456, 0.406], np.float32)[:, None, None]
STD = np.array([0.229, 0.224, 0.225], np.float32)[:, None, None]
USER_FILE = """
import torch
from torch import nn


def tiny():
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 14 * 14, 3))
"""


def users_pixels(path: Path, rule: str) -> np.ndarray:
    """(3, 16, 16) in 0..1 as the user preprocesses: torchvision's rule, or nnsee's square crop (for contrast)."""
    im = Image.open(path).convert("RGB")
    if rule == "square":
        return np.asarray(ImageOps.fit(im, (SIZE, SIZE), Image.LANCZOS), np.float32).transpose(2, 0, 1) / 255
    s = round(SIZE * 256 / 224)
    w, h = im.size
    new_w, new_h = (s, int(s * h / w)) if w <= h else (int(s * w / h), s)
    im = im.resize((new_w, new_h), Image.BILINEAR)
    left, top = int(round((new_w - SIZE) / 2.0)), int(round((new_h - SIZE) / 2.0))
    return np.asarray(im.crop((left, top, left + SIZE, top + SIZE)), np.float32).transpose(2, 0, 1) / 255


@pytest.fixture(scope="module")
def user(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("resize-user")
    (root / "tinynet.py").write_text(USER_FILE)
    torch.manual_seed(3)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.Flatten(),
                                torch.nn.Linear(4 * 14 * 14, 3)).eval()
    torch.save(model.state_dict(), root / "weights.pt")
    rng = np.random.default_rng(5)
    files = []
    for k, name in enumerate(CLASSES):
        (root / "data" / name).mkdir(parents=True)
        for i in range(10):
            w, h = (int(v) for v in rng.integers(17, 60, 2))
            pixels = rng.integers(0, 256, (h, w, 3)).astype(np.uint8)
            files.append((root / "data" / name / f"{i}.png", k))
            Image.fromarray(pixels).save(files[-1][0])
    return {"root": root, "model": model, "files": files}


def users_confusion(user: dict, rule: str) -> np.ndarray:
    x = np.stack([(users_pixels(p, rule) - MEAN) / STD for p, _ in user["files"]])
    with torch.no_grad():
        predicted = user["model"](torch.from_numpy(x)).argmax(1).numpy()
    matrix = np.zeros((3, 3), int)
    for (_, k), p in zip(user["files"], predicted, strict=True):
        matrix[k, p] += 1
    return matrix


@pytest.fixture(scope="module")
def run(user: dict) -> Path:
    out = user["root"] / "run"
    code, stdout, stderr = cli("adopt", "--out", out, "--code", f"{user['root'] / 'tinynet.py'}:tiny", "--weights",
                               user["root"] / "weights.pt", "--input-shape", f"3x{SIZE}x{SIZE}", "--normalize",
                               "imagenet", "--data", user["root"] / "data", "--resize", "torchvision")
    assert code == 0, stderr
    assert "resize torchvision" in stdout
    return out


def test_run_json_records_the_rule(run: Path) -> None:
    meta = json.loads((run / "run.json").read_text())
    assert meta["model"]["resize"] == "torchvision" and meta["data"]["resize"] == "torchvision"


def test_evaluate_data_reproduces_the_users_confusion_matrix(run: Path, user: dict) -> None:
    want = users_confusion(user, "torchvision")
    assert not np.array_equal(want, users_confusion(user, "square"))  # the folder tells the rules apart
    for data in (["--data", str(user["root"] / "data")], []):  # the folder given again, and the run's own spec
        total = np.zeros((3, 3), int)
        for split in ("train", "val", "test"):
            code, stdout, stderr = cli("evaluate", run, *data, "--split", split, "--json", "--device", "cpu")
            assert code == 0, stderr
            total += np.array(json.loads(stdout)["confusion_matrix"])
        assert np.array_equal(total, want), (data, total, want)
    accuracy = np.trace(want) / want.sum()
    print(f"user's accuracy {accuracy:.3f}, with the square crop {np.trace(users_confusion(user, 'square')) / 30:.3f}")


def users_probabilities(user: dict, path: Path) -> np.ndarray:
    x = (users_pixels(path, "torchvision") - MEAN) / STD
    with torch.no_grad():
        return torch.softmax(user["model"](torch.from_numpy(x[None])), 1)[0].numpy()


def test_explain_and_the_live_page_use_the_rule(run: Path, user: dict, tmp_path: Path) -> None:
    pytest.importorskip("httpx")
    from starlette.testclient import TestClient

    from nnsee.serve import create_app

    path = user["files"][0][0]
    want = users_probabilities(user, path)
    code, stdout, stderr = cli("explain", run, path, "--method", "saliency", "--out", tmp_path, "--json",
                               "--device", "cpu")
    assert code == 0, stderr
    (answer,) = json.loads(stdout)["images"]
    assert np.allclose([answer["probabilities"][n] for n in CLASSES], want, atol=1e-5)
    client = TestClient(create_app([run]), base_url="http://127.0.0.1:8000")
    page = client.post(f"/api/explain?run={run.name}&view=saliency", content=path.read_bytes(),
                       headers={"content-type": "image/png"})
    assert page.status_code == 200, page.text
    assert np.allclose(page.json()["probabilities"], want, atol=1e-5)


def test_unknown_rule_is_refused(user: dict, tmp_path: Path) -> None:
    code, _, stderr = cli("adopt", "--out", tmp_path / "r", "--code", f"{user['root'] / 'tinynet.py'}:tiny",
                          "--weights", user["root"] / "weights.pt", "--input-shape", "3x16x16", "--normalize", "none",
                          "--classes", user["root"] / "c.txt", "--resize", "shorter")
    assert code == 2 and "square" in stderr and "torchvision" in stderr and "Traceback" not in stderr
    from nnsee.adoption import adopt_code
    from nnsee.errors import RunError

    with pytest.raises(RunError, match="^resize .* must be one of square, torchvision; got 'shorter'$"):
        adopt_code(f"{user['root'] / 'tinynet.py'}:tiny", weights=user["root"] / "weights.pt", out=tmp_path / "r",
                   class_names=list(CLASSES), input_shape=(3, 16, 16), normalize="none", resize="shorter")
    assert not (tmp_path / "r").exists()


def test_an_unknown_rule_in_run_json_is_one_line(run: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    meta = json.loads((copy / "run.json").read_text())
    meta["model"]["resize"] = "fit-width"
    (copy / "run.json").write_text(json.dumps(meta))
    line = refused(*cli("explain", copy, next((run.parent / "data" / "ant").iterdir()), "--method", "saliency",
                        "--out", tmp_path / "x", "--device", "cpu")[::2])
    assert "'resize'" in line and "square, torchvision" in line and "'fit-width'" in line


def test_track_passes_the_rule_through(user: dict, tmp_path: Path) -> None:
    import nnsee

    tracker = nnsee.track(user["model"], out=tmp_path / "tracked", class_names=list(CLASSES),
                          input_shape=(3, SIZE, SIZE), normalize="none", resize="torchvision", snapshots=())
    tracker.close()
    assert json.loads((tmp_path / "tracked" / "run.json").read_text())["model"]["resize"] == "torchvision"


def test_the_report_overview_says_which_rule_brought_the_files_in(run: Path) -> None:
    """The overview's images row names the rule (every rule of the decoder has its words)."""
    from nnsee.data.image_decode import RESIZE_RULES
    from nnsee.data.spec import load_splits
    from nnsee.report.sections.common import ReportInput
    from nnsee.report.sections.overview import _RESIZE_SAID, overview
    from nnsee.train import load_run

    assert set(_RESIZE_SAID) == set(RESIZE_RULES)
    loaded = load_run(run)
    facts = dict(overview(ReportInput(loaded, load_splits(loaded.data_spec)))["facts"])
    assert "shorter side to size·256/224, then the centre crop" in facts["images"]
