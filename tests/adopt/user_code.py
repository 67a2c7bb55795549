"""A user's project on disk, as `nnsee adopt` meets it: a package ``mynets`` (the ResNet-shaped model of tests/zoo.py
copied in as the user's own file, and variants: tuple/dict outputs, half precision, a factory that raises, a module
that does not import), its weights, class names and a 3-class RGB folder of 32 px images (red, green, blue tinted)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

ZOO = Path(__file__).resolve().parents[1] / "zoo.py"
CLASSES = ("blue", "green", "red")  # sorted, as a class folder lists them
ARGS = {"n_classes": 3, "width": 8}

VARIANTS = '''
import torch
from torch import nn

from mynets.zoo import resnet18


class TwoHeads(nn.Module):
    def __init__(self, kind="tuple"):
        super().__init__()
        self.net = resnet18(n_classes=3, width=8)
        self.kind = kind

    def forward(self, x):
        z = self.net(x)
        return (z, z.mean(1)) if self.kind == "tuple" else {"features": z.mean(1), "logits": z}


def two_heads(kind="tuple"):
    return TwoHeads(kind)


def half_in_training():
    return resnet18(n_classes=3, width=8, dtype=torch.float16).train()


def broken():
    raise ValueError("the factory needs its config file")


def spatial():
    return nn.Conv2d(3, 3, 3)


def small_cnn():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(8, 3))
'''


def write_project(root: Path) -> dict[str, Path]:
    """The package (``root/pkg/mynets``), weights (``.pt`` and ``.safetensors``), ``classes.txt`` and ``data/``."""
    import torch
    from safetensors.torch import save_file

    package = root / "pkg" / "mynets"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    shutil.copy(ZOO, package / "zoo.py")
    (package / "variants.py").write_text(VARIANTS)
    (package / "bad_import.py").write_text("import not_a_module_nnsee_knows\n\ndef make():\n    pass\n")
    from importlib import util

    spec = util.spec_from_file_location("_user_zoo", package / "zoo.py")
    zoo = util.module_from_spec(spec)
    spec.loader.exec_module(zoo)
    model = zoo.resnet18(**ARGS)
    train_on_tints(model, seed=0)
    torch.save(model.state_dict(), root / "weights.pt")
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, root / "weights.safetensors")
    (root / "classes.txt").write_text("\n".join(CLASSES) + "\n")
    rng = np.random.default_rng(0)
    for k, name in enumerate(CLASSES):
        (root / "data" / name).mkdir(parents=True)
        for i in range(12):
            pixels = rng.integers(0, 150, (32, 32, 3)).astype(np.uint8)
            pixels[..., 2 - k] += np.uint8(rng.integers(0, 105))  # blue, green, red tint: some images barely tinted
            Image.fromarray(pixels).save(root / "data" / name / f"{i}.png")
    grey = rng.integers(0, 255, (32, 32)).astype(np.uint8)
    Image.fromarray(grey, mode="L").save(root / "grey.png")
    return {"pkg": root / "pkg", "pt": root / "weights.pt", "safetensors": root / "weights.safetensors",
            "classes": root / "classes.txt", "data": root / "data", "grey": root / "grey.png"}


def train_on_tints(model, seed: int) -> None:
    """A few SGD steps on tinted noise, so the adopted model is better than chance (and not perfect)."""
    import torch

    g = torch.Generator().manual_seed(seed)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    mean = torch.tensor([0.485, 0.456, 0.406])[:, None, None]
    std = torch.tensor([0.229, 0.224, 0.225])[:, None, None]
    for _ in range(15):
        y = torch.randint(0, 3, (24,), generator=g)
        x = torch.rand(24, 3, 32, 32, generator=g) * 0.6
        x[torch.arange(24), 2 - y] += torch.rand(24, generator=g)[:, None, None] * 0.4
        loss = torch.nn.functional.cross_entropy(model((x - mean) / std), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()


def cli(*args: str) -> tuple[int, str, str]:
    from click.testing import CliRunner

    from nnsee.cli import main

    result = CliRunner().invoke(main, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


def refused(code: int, stderr: str) -> str:
    """The one error line of a refused command (exit 1, no traceback); notes on stderr may precede it."""
    errors = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert code == 1 and len(errors) == 1 and "Traceback" not in stderr, stderr
    return errors[0]


def adopt_args(project: dict[str, Path], out: Path, *extra: str, code: str = "mynets.zoo:resnet18",
               args: dict | None = None, weights: str = "pt") -> list[str]:
    return ["adopt", "--out", out, "--code", code, "--code-args", json.dumps(ARGS if args is None else args),
            "--weights", project.get(weights, weights), "--input-shape", "3x32x32",
            "--normalize", "imagenet", *(extra or ("--data", project["data"]))]
